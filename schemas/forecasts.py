"""The forecast contract: one row per series × cutoff × model × horizon.

A row says: "with data up to ``cutoff`` (inclusive), model ``model`` (trained instance
``model_version``) forecast ``y_hat`` for ``unique_id`` on ``ds = cutoff + h days``", with 80 % and
95 % prediction intervals where the model gives them (NaN where it does not). ``run_id`` and
``created_at`` say which run wrote it.

Quantiles (issue 21), additive to the columns above: ``q_025 .. q_975`` hold the forecast
distribution's quantiles at :data:`QUANTILES`, named in per mille (``q_025`` = the 2.5 %
quantile, ``q_500`` the median). The engine derives them from the central intervals at
:data:`QUANTILE_LEVELS` (the lower bound of the L % interval is the (1 - L/100)/2 quantile,
the upper the 1 - that one) and takes ``y_hat`` as the median, so ``q_100 = y_lo_80``,
``q_975 = y_hi_95`` and so on. A row whose model gives no intervals has NaN quantiles; files
written before the quantiles existed read back with NaN there.

:class:`EngineForecastSchema` is the walk-forward engine's output (no run columns yet);
:class:`ForecastSchema` is the stored table. Validate lazily (``validate(df, lazy=True)``) to get
every failing row at once.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

FORECAST_KEY = ["unique_id", "cutoff", "model", "h"]
"""The columns that identify a row (unique together)."""

INTERVAL_CHAIN = ["y_lo_95", "y_lo_80", "y_hat", "y_hi_80", "y_hi_95"]
"""Columns that must be non-decreasing left to right wherever both values are present."""

QUANTILES = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975)
"""The quantile levels every forecast row carries (as probabilities)."""

QUANTILE_LEVELS = (50, 80, 90, 95)
"""The central interval levels (%) whose bounds, with the median, give :data:`QUANTILES`."""


def quantile_column(probability: float) -> str:
    """``q_025`` for 0.025: the quantile's column, its level in per mille on three digits."""
    permille = round(probability * 1000)
    if not 0 < permille < 1000 or abs(permille - probability * 1000) > 1e-9:
        raise ValueError(f"a contract quantile is a whole per mille strictly between 0 and 1, got {probability}")
    return f"q_{permille:03d}"


QUANTILE_COLUMNS = tuple(quantile_column(p) for p in QUANTILES)
"""``q_025, q_050, q_100, q_250, q_500, q_750, q_900, q_950, q_975``: non-decreasing left to right."""


def interval_quantile_columns(level: int) -> tuple[str, str]:
    """The quantile columns of the central ``level`` % interval's bounds (80 -> q_100, q_900)."""
    tail = (100 - level) / 200.0
    return quantile_column(tail), quantile_column(1.0 - tail)


MEDIAN_COLUMN = quantile_column(0.5)

_NON_EMPTY = {"min_value": 1}


def _ordered(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Rows whose ``columns`` are non-decreasing left to right wherever both of a pair are present."""
    ok = pd.Series(True, index=df.index)
    for low, high in itertools.combinations(columns, 2):
        ok &= df[low].isna() | df[high].isna() | (df[low] <= df[high])
    return ok


class EngineForecastSchema(pa.DataFrameModel):
    """Forecasts as the walk-forward engine returns them (the contract minus the run columns)."""

    unique_id: Series[str] = pa.Field(str_length=_NON_EMPTY, description="series: bus, rail, ...")
    cutoff: Series[pa.DateTime] = pa.Field(description="last date whose data the forecast could use")
    ds: Series[pa.DateTime] = pa.Field(description="the date forecast: cutoff + h days")
    h: Series[np.int64] = pa.Field(ge=1, description="horizon in days")
    model: Series[str] = pa.Field(str_length=_NON_EMPTY, description="model family: naive, sarima, ...")
    y_hat: Series[np.float64] = pa.Field(nullable=False, description="point forecast")
    y_lo_80: Series[np.float64] = pa.Field(nullable=True, description="80 % interval, lower")
    y_hi_80: Series[np.float64] = pa.Field(nullable=True, description="80 % interval, upper")
    y_lo_95: Series[np.float64] = pa.Field(nullable=True, description="95 % interval, lower")
    y_hi_95: Series[np.float64] = pa.Field(nullable=True, description="95 % interval, upper")
    model_version: Series[str] = pa.Field(str_length=_NON_EMPTY, description="trained instance id")
    q_025: Series[np.float64] = pa.Field(nullable=True, description="2.5 % quantile (= y_lo_95)")
    q_050: Series[np.float64] = pa.Field(nullable=True, description="5 % quantile (the 90 % interval's lower bound)")
    q_100: Series[np.float64] = pa.Field(nullable=True, description="10 % quantile (= y_lo_80)")
    q_250: Series[np.float64] = pa.Field(nullable=True, description="25 % quantile (the 50 % interval's lower bound)")
    q_500: Series[np.float64] = pa.Field(nullable=True, description="median (= y_hat where the model gives intervals)")
    q_750: Series[np.float64] = pa.Field(nullable=True, description="75 % quantile (the 50 % interval's upper bound)")
    q_900: Series[np.float64] = pa.Field(nullable=True, description="90 % quantile (= y_hi_80)")
    q_950: Series[np.float64] = pa.Field(nullable=True, description="95 % quantile (the 90 % interval's upper bound)")
    q_975: Series[np.float64] = pa.Field(nullable=True, description="97.5 % quantile (= y_hi_95)")

    class Config:
        strict = True
        coerce = False
        unique = FORECAST_KEY

    @pa.check("cutoff", "ds", name="date_at_midnight")
    def date_at_midnight(cls, values: Series[pd.Timestamp]) -> Series[bool]:
        return values == values.dt.normalize()

    @pa.check("y_hat", name="finite")
    def finite(cls, values: Series[float]) -> Series[bool]:
        return pd.Series(np.isfinite(values.to_numpy(dtype=np.float64)), index=values.index)

    @pa.dataframe_check(name="ds_is_cutoff_plus_h_days")
    def ds_is_cutoff_plus_h_days(cls, df: pd.DataFrame) -> Series[bool]:
        return df["ds"] == df["cutoff"] + pd.to_timedelta(df["h"], unit="D")

    @pa.dataframe_check(name="intervals_nested_around_y_hat")
    def intervals_nested_around_y_hat(cls, df: pd.DataFrame) -> Series[bool]:
        # Every pair, not only neighbours: with the 80 % interval missing, the 95 % one must
        # still bracket y_hat.
        return _ordered(df, INTERVAL_CHAIN)

    @pa.dataframe_check(name="quantiles_monotone")
    def quantiles_monotone(cls, df: pd.DataFrame) -> Series[bool]:
        # Every pair, as above: a missing middle quantile must not hide a crossing around it.
        return _ordered(df, QUANTILE_COLUMNS)

    @pa.dataframe_check(name="interval_bounds_come_in_pairs")
    def interval_bounds_come_in_pairs(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["y_lo_80"].isna() == df["y_hi_80"].isna()) & (df["y_lo_95"].isna() == df["y_hi_95"].isna())


class ForecastSchema(EngineForecastSchema):
    """The stored forecast table: engine rows plus the run that wrote them."""

    run_id: Series[str] = pa.Field(str_length=_NON_EMPTY, description="the run that wrote the row")
    # Coerced to microseconds: pandas 3 clocks and Parquet round trips may give ns or us.
    created_at: Series[pd.DatetimeTZDtype] = pa.Field(
        dtype_kwargs={"unit": "us", "tz": "UTC"}, coerce=True, description="when the row was written (UTC)"
    )

    class Config:
        strict = True
        coerce = False
        unique = FORECAST_KEY
