"""The metrics contract: forecast accuracy by model × series × horizon × evaluation window.

One row scores every forecast of one ``model`` for one series (``unique_id``) at one horizon
``h`` whose target date ``ds`` falls in ``[window_start, window_end]`` (both inclusive). ``h = 0``
(:data:`ALL_HORIZONS`) pools every horizon of that model, series and window: it is the row the
leaderboard's "all horizons" columns read.

A row exists exactly when the model has at least one forecast targeting a date in the window,
scored or pending; a window without any forecast yields no rows. A row whose forecasts are all
pending has ``count = 0`` and NaN metrics. The columns after ``coverage_95`` (issue 21: pinball
loss, WIS, coverage of the 50/90 % bands, widths, skill) were added later: metrics files written
before them read back with NaN there and ``quantile_count = 0``
(:data:`PROBABILISTIC_DEFAULTS`). No column holds a "now" timestamp, so scoring the
same inputs again gives the same table, row for row.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

ALL_HORIZONS = 0
"""``h`` of the rows that pool horizons 1..H (every scored forecast weighted equally)."""

TRAILING_WINDOW_DAYS = (7, 28, 91)
"""Trailing windows scored each run: the last 7, 28 and 91 target dates up to the eval date."""

WINDOW_NAME_PATTERN = r"^(last_[1-9]\d*|range:\d{4}-\d{2}-\d{2}\.\.\d{4}-\d{2}-\d{2})$"

PROBABILISTIC_DEFAULTS: dict[str, float | int] = {
    "coverage_50": np.nan, "coverage_90": np.nan, "width_80": np.nan, "width_95": np.nan, "quantile_count": 0,
    "pinball": np.nan, **{f"pinball_{q}": np.nan for q in ("025", "050", "100", "250", "500", "750", "900", "950", "975")},
    "wis": np.nan, "wis_skill": np.nan,
}  # fmt: skip
"""The values of the columns a metrics file written before issue 21 lacks."""

METRICS_KEY = ["eval_date", "window", "unique_id", "model", "h"]
"""The columns that identify a row (unique together)."""


def trailing_window_name(days: int) -> str:
    """``last_28`` for the 28 target dates ending at the evaluation date."""
    if days < 1:
        raise ValueError(f"a trailing window needs at least one day, got {days}")
    return f"last_{days}"


def range_window_name(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """``range:2024-01-01..2024-03-31`` for an explicit, inclusive range of target dates."""
    return f"range:{pd.Timestamp(start):%Y-%m-%d}..{pd.Timestamp(end):%Y-%m-%d}"


def is_window_name(name: str) -> bool:
    return re.match(WINDOW_NAME_PATTERN, name) is not None


class MetricsSchema(pa.DataFrameModel):
    """Accuracy metrics; see the module docstring for what one row means."""

    eval_date: Series[pa.DateTime] = pa.Field(description="the evaluation date the run scored at")
    window: Series[str] = pa.Field(
        str_matches=WINDOW_NAME_PATTERN, description="last_7 / last_28 / last_91 / range:START..END"
    )
    window_start: Series[pa.DateTime] = pa.Field(description="first target date in the window")
    window_end: Series[pa.DateTime] = pa.Field(description="last target date in the window")
    unique_id: Series[str] = pa.Field(str_length={"min_value": 1})
    model: Series[str] = pa.Field(str_length={"min_value": 1})
    h: Series[np.int64] = pa.Field(ge=ALL_HORIZONS, description="horizon in days; 0 = all horizons pooled")
    count: Series[np.int64] = pa.Field(ge=0, description="forecasts scored against an actual")
    pending: Series[np.int64] = pa.Field(ge=0, description="forecasts whose target has no actual yet")
    mape_excluded_zero: Series[np.int64] = pa.Field(ge=0, description="scored forecasts left out of MAPE (actual 0)")
    mae: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean |y_hat - y|")
    mape: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean |y_hat - y| / |y|, in percent")
    bias: Series[np.float64] = pa.Field(nullable=True, description="mean (y_hat - y)")
    coverage_80: Series[np.float64] = pa.Field(ge=0, le=1, nullable=True, description="share of y inside the 80% interval")
    coverage_95: Series[np.float64] = pa.Field(ge=0, le=1, nullable=True, description="share of y inside the 95% interval")
    # Issue 21's probabilistic scores, appended: tasks.core.evaluation.probabilistic defines them.
    coverage_50: Series[np.float64] = pa.Field(ge=0, le=1, nullable=True, description="share of y inside [q_250, q_750]")
    coverage_90: Series[np.float64] = pa.Field(ge=0, le=1, nullable=True, description="share of y inside [q_050, q_950]")
    width_80: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean y_hi_80 - y_lo_80 of the scored forecasts")
    width_95: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean y_hi_95 - y_lo_95 of the scored forecasts")
    quantile_count: Series[np.int64] = pa.Field(ge=0, description="scored forecasts with all nine quantiles")
    pinball: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean pinball loss over the nine quantiles")
    pinball_025: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean pinball loss of q_025")
    pinball_050: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean pinball loss of q_050")
    pinball_100: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean pinball loss of q_100")
    pinball_250: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean pinball loss of q_250")
    pinball_500: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean pinball loss of q_500 (half the median's MAE)")
    pinball_750: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean pinball loss of q_750")
    pinball_900: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean pinball loss of q_900")
    pinball_950: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean pinball loss of q_950")
    pinball_975: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean pinball loss of q_975")
    wis: Series[np.float64] = pa.Field(ge=0, nullable=True, description="mean weighted interval score (50/80/90/95 % and the median)")
    wis_skill: Series[np.float64] = pa.Field(
        nullable=True, description="1 - WIS / the seasonal naive's WIS over the targets both forecast (same cutoff, h)"
    )

    class Config:
        strict = True
        ordered = True
        unique = METRICS_KEY

    @pa.dataframe_check
    def window_is_not_reversed(cls, df: pd.DataFrame) -> pd.Series:
        return df["window_start"] <= df["window_end"]

    @pa.dataframe_check
    def dates_are_midnight(cls, df: pd.DataFrame) -> pd.Series:
        columns = ["eval_date", "window_start", "window_end"]
        return pd.concat([df[c] == df[c].dt.normalize() for c in columns], axis=1).all(axis=1)

    @pa.dataframe_check
    def metrics_present_exactly_when_scored(cls, df: pd.DataFrame) -> pd.Series:
        # NaN must mean "nothing to average", never a silent failure of the computation.
        scored = df["count"] > 0
        return (df["mae"].notna() == scored) & (df["bias"].notna() == scored)

    @pa.dataframe_check
    def mape_present_exactly_when_a_nonzero_actual_was_scored(cls, df: pd.DataFrame) -> pd.Series:
        return df["mape"].notna() == (df["count"] > df["mape_excluded_zero"])

    @pa.dataframe_check
    def zero_exclusions_within_count(cls, df: pd.DataFrame) -> pd.Series:
        return df["mape_excluded_zero"] <= df["count"]

    @pa.dataframe_check
    def quantile_scores_present_exactly_when_quantiles_were_scored(cls, df: pd.DataFrame) -> pd.Series:
        scored = df["quantile_count"] > 0
        return (df["quantile_count"] <= df["count"]) & (df["wis"].notna() == scored) & (df["pinball"].notna() == scored)
