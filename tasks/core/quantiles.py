"""The forecast contract's quantiles, from the central intervals every model already gives.

A model returns its point forecast and, per level L, the bounds of its central L % interval;
the lower bound is the (1 - L/100)/2 quantile and the upper one the 1 - (1 - L/100)/2 quantile
of the forecast distribution. The intervals at :data:`schemas.forecasts.QUANTILE_LEVELS`
(50, 80, 90, 95) with the median give the contract's nine quantiles.

The median is the point forecast for every model family in the project: naive, SARIMA and
SARIMAX (level scale) forecast the mean of a normal distribution, which is its median; SARIMAX
on the log scale and ridge / global_ridge forecast ``exp`` of a log-scale mean, the median on
the original scale when the log errors are symmetric (ridge's module docstring); the RNNs'
bands are quantiles of errors around their point forecast, widened to contain it; the ensemble's
median is its combined point forecast (:mod:`tasks.core.models.ensemble`). Every family's bands contain
its point forecast, so the median never crosses the 25 % or 75 % quantile.

Pure: arrays and frames in and out; no I/O.
"""

from __future__ import annotations

import re
from typing import Mapping

import numpy as np
import pandas as pd

from schemas.forecasts import MEDIAN_COLUMN, QUANTILE_COLUMNS, QUANTILE_LEVELS, interval_quantile_columns

_BAND_COLUMN = re.compile(r"^(y_(lo|hi)_\d+|q_\d{3})$")


def quantiles_from_bands(
    median: np.ndarray, lower: Mapping[int, np.ndarray | None], upper: Mapping[int, np.ndarray | None]
) -> dict[str, np.ndarray]:
    """The contract's quantile columns from a forecast's point (its median) and its bands.

    A level the model did not give leaves its two quantiles NaN; the median is NaN on the rows
    where no level has a band, so a model without intervals gets no quantiles at all rather than
    a lone median that would pass for a distribution."""
    median = np.asarray(median, dtype=np.float64)
    columns = {c: np.full(median.shape, np.nan) for c in QUANTILE_COLUMNS}
    banded = np.zeros(median.shape, dtype=bool)
    for level in QUANTILE_LEVELS:
        low_column, high_column = interval_quantile_columns(level)
        for column, bounds in ((low_column, lower.get(level)), (high_column, upper.get(level))):
            if bounds is not None:
                columns[column] = np.asarray(bounds, dtype=np.float64).copy()
                banded |= np.isfinite(columns[column])
    columns[MEDIAN_COLUMN] = np.where(banded, median, np.nan)
    return columns


def distribution_columns(frame: pd.DataFrame, include_point: bool = True) -> list[str]:
    """The columns that move with the forecast's level: ``y_hat`` (if ``include_point``), every
    ``y_lo_L`` / ``y_hi_L`` and every ``q_NNN`` column present in ``frame``."""
    point = ["y_hat"] if include_point and "y_hat" in frame.columns else []
    return point + [c for c in frame.columns if _BAND_COLUMN.match(str(c))]


def shift_distribution(frame: pd.DataFrame, amount: pd.Series | np.ndarray | float, include_point: bool = True) -> pd.DataFrame:
    """``frame`` with its point, bands and quantiles moved by ``amount`` (one value per row, or
    one for all): an additive adjustment of the forecast (e.g. a reconciliation's) shifts the
    whole distribution, so every band keeps its width and the quantiles stay monotone. NaN bounds
    stay NaN; other columns are untouched. Returns a copy."""
    shifted = frame.copy()
    values = np.asarray(amount, dtype=np.float64)
    if values.ndim and values.shape != (len(frame),):
        raise ValueError(f"one shift per row expected: {len(frame)} rows, {values.shape[0]} shifts")
    for column in distribution_columns(frame, include_point):
        shifted[column] = frame[column].to_numpy(dtype=np.float64) + values
    return shifted
