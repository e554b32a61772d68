"""Daily weather at Chicago O'Hare (GHCN station USW00094846): what was observed, and the forecasts
that were issued (one vintage per issue date), in one unit system, NOAA's "standard" units:
°F, inches, miles per hour.

A missing value is NaN, never a guess: a model decides what to do with a day the station did not
report. Bounds are plausibility limits, wide of O'Hare's records (-27 °F, 105 °F, 6.9 in of rain in
a day), so a unit mix-up (°C read as °F, mm read as inches) or a typing error is refused, not stored.

Validate through :func:`check_weather`: every failing row at once, reported as one line naming the
file, the row and the rule.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas.errors import InvalidInput

OBSERVED_VARIABLES = ("tmax_f", "tmin_f", "prcp_in", "snow_in", "snwd_in", "awnd_mph")
"""Daily maximum and minimum temperature (°F), precipitation (inches of water), snowfall and snow
depth (inches), average wind speed (mph): GHCN-Daily's TMAX, TMIN, PRCP, SNOW, SNWD, AWND."""
FORECAST_VARIABLES = ("tmax_f", "tmin_f", "prcp_in", "snow_in")
"""What a forecast vintage holds: the observed variables a daily forecast gives."""
MAX_LEAD_DAYS = 16
"""A vintage's furthest day: ``ds = issued + lead``, lead 0 (the issue day itself, which the
nightly's h = 1 target is, its cutoff being the day before) to 16."""

_TEMPERATURE = {"ge": -70.0, "le": 130.0}


TMIN_RULE = "tmin_f_at_most_tmax_f"


def _tmin_at_most_tmax(df: pd.DataFrame) -> pd.Series:
    return df["tmin_f"].isna() | df["tmax_f"].isna() | (df["tmin_f"] <= df["tmax_f"])


class _DailyWeather(pa.DataFrameModel):
    """The variables both tables share."""

    tmax_f: Series[float] = pa.Field(nullable=True, **_TEMPERATURE)
    tmin_f: Series[float] = pa.Field(nullable=True, **_TEMPERATURE)
    prcp_in: Series[float] = pa.Field(nullable=True, ge=0.0, le=20.0)
    snow_in: Series[float] = pa.Field(nullable=True, ge=0.0, le=60.0)

    # Row checks are declared in each table, not here: pandera 0.35 shares an inherited check
    # between the subclasses and one's name ends up on the other's.

    class Config:
        strict = True
        coerce = True


class ObservedWeather(_DailyWeather):
    """One row per observed day, sorted by date."""

    date: Series[pd.Timestamp] = pa.Field(nullable=False, unique=True)
    snwd_in: Series[float] = pa.Field(nullable=True, ge=0.0, le=120.0)
    awnd_mph: Series[float] = pa.Field(nullable=True, ge=0.0, le=100.0)

    @pa.dataframe_check(name=TMIN_RULE)
    def tmin_at_most_tmax(cls, df: pd.DataFrame) -> Series[bool]:
        return _tmin_at_most_tmax(df)

    @pa.dataframe_check(name="sorted_by_date")
    def sorted_by_date(cls, df: pd.DataFrame) -> bool:
        return bool(df["date"].is_monotonic_increasing)


class ForecastVintage(_DailyWeather):
    """The forecasts issued on ``issued`` for the days ``ds = issued + lead``; several vintages
    read together are sorted by (issued, ds)."""

    issued: Series[pd.Timestamp] = pa.Field(nullable=False)
    ds: Series[pd.Timestamp] = pa.Field(nullable=False)
    lead: Series[int] = pa.Field(ge=0, le=MAX_LEAD_DAYS)

    @pa.dataframe_check(name=TMIN_RULE)
    def tmin_at_most_tmax(cls, df: pd.DataFrame) -> Series[bool]:
        return _tmin_at_most_tmax(df)

    @pa.dataframe_check(name="ds_is_issued_plus_lead")
    def ds_is_issued_plus_lead(cls, df: pd.DataFrame) -> Series[bool]:
        return df["ds"] == df["issued"] + pd.to_timedelta(df["lead"], unit="D")

    @pa.dataframe_check(name="one_row_per_issued_and_ds")
    def unique_key(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df.duplicated(["issued", "ds"], keep=False)


OBSERVED_COLUMNS = ["date", *OBSERVED_VARIABLES]
VINTAGE_COLUMNS = ["issued", "ds", "lead", *FORECAST_VARIABLES]
# A model lists the fields it inherits first; the tables put their key first.
_COLUMN_ORDER = {ObservedWeather: OBSERVED_COLUMNS, ForecastVintage: VINTAGE_COLUMNS}


class WeatherDataError(InvalidInput):
    """Weather data broke a rule; the message is one line: source, row, rule (and how many more)."""


def check_weather(
    frame: pd.DataFrame, schema: type[pa.DataFrameModel], source: str, rows: Sequence[str] | None = None
) -> pd.DataFrame:
    """``frame`` validated by ``schema``, columns in the table's order, else
    :class:`WeatherDataError` naming the first failing row by ``rows`` (its label in the source,
    e.g. ``line 7`` of a CSV; by position when not given) and counting the other problems."""
    order = _COLUMN_ORDER[schema]
    ordered = frame.reset_index(drop=True)
    ordered = ordered[[c for c in order if c in ordered.columns] + [c for c in ordered.columns if c not in order]]
    try:
        return schema.validate(ordered, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures = errors.failure_cases
    problems: dict[tuple[float, str], str] = {}
    for failure in failures.itertuples(index=False):
        position = float("inf") if pd.isna(failure.index) else int(failure.index)
        where = "the table" if position == float("inf") else (
            rows[int(position)] if rows is not None and position < len(rows) else f"row {int(position) + 1}"
        )
        if failure.schema_context == "Column":
            rule = f"{failure.column}: {failure.check}{_got(failure.failure_case)}"
        else:  # a rule on the whole row (tmin above tmax), reported once however many columns it names
            rule = str(failure.check)
        problems.setdefault((position, rule), f"{where}: {rule}")
    first = problems[min(problems)]
    others = f"; and {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
    raise WeatherDataError(f"{source}: {first}{others}")


def _got(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return f" (got {value.date()})"
    return f" (got {value!r})"


def empty_observed() -> pd.DataFrame:
    frame = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]")})
    for column in OBSERVED_VARIABLES:
        frame[column] = pd.Series(dtype="float64")
    return frame


def empty_vintages() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="datetime64[ns]") for c in ("issued", "ds")})
    frame["lead"] = pd.Series(dtype="int64")
    for column in FORECAST_VARIABLES:
        frame[column] = pd.Series(dtype="float64")
    return frame
