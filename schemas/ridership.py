"""pandera models for the ridership tables: the raw portal file, the clean series, and the
quarantine and revision records that ingest writes beside them.

Validation is always lazy (``validate(df, lazy=True)``) so one pass reports every failing row.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

DAY_TYPES = ["W", "A", "U"]
# Plausibility ceiling for one day's boardings of one mode: the record is about 1.2 million
# (bus, 2001-2008); three times that is a typing error, not a busy day.
MAX_DAILY_BOARDINGS = 4_000_000
EARLIEST_SERVICE_DATE = pd.Timestamp("1990-01-01")

RAW_COLUMNS = ("service_date", "day_type", "bus", "rail_boardings", "total_rides")
RAW_COUNT_COLUMNS = ("bus", "rail_boardings", "total_rides")


def _is_whole_number(values: pd.Series) -> pd.Series:
    return values.isna() | (values == values.round())


class RawRidership(pa.DataFrameModel):
    """One parsed row of the portal's CSV (``service_date`` parsed, counts as floats so that a
    fractional or missing count is reported rather than coerced away)."""

    service_date: Series[pd.Timestamp] = pa.Field(nullable=False, ge=EARLIEST_SERVICE_DATE)
    day_type: Series[str] = pa.Field(nullable=False, isin=DAY_TYPES)
    bus: Series[float] = pa.Field(nullable=False, ge=0, le=MAX_DAILY_BOARDINGS)
    rail_boardings: Series[float] = pa.Field(nullable=False, ge=0, le=MAX_DAILY_BOARDINGS)
    total_rides: Series[float] = pa.Field(nullable=False, ge=0, le=2 * MAX_DAILY_BOARDINGS)

    @pa.check("bus", "rail_boardings", "total_rides", name="whole_number")
    def whole_number(cls, values: Series[float]) -> Series[bool]:
        return _is_whole_number(values)

    @pa.dataframe_check(name="total_rides_equals_bus_plus_rail")
    def total_is_sum(cls, df: pd.DataFrame) -> Series[bool]:
        parts = df[list(RAW_COUNT_COLUMNS)]
        comparable = parts.notna().all(axis=1)
        return ~comparable | (df["total_rides"] == df["bus"] + df["rail_boardings"])

    class Config:
        strict = True
        coerce = False


class CleanRidership(pa.DataFrameModel):
    """The clean series: one row per service date."""

    service_date: Series[pd.Timestamp] = pa.Field(nullable=False, unique=True, ge=EARLIEST_SERVICE_DATE)
    day_type: Series[str] = pa.Field(nullable=False, isin=DAY_TYPES)
    bus: Series[int] = pa.Field(nullable=False, ge=0, le=MAX_DAILY_BOARDINGS)
    rail: Series[int] = pa.Field(nullable=False, ge=0, le=MAX_DAILY_BOARDINGS)

    @pa.dataframe_check(name="sorted_by_service_date")
    def sorted_by_date(cls, df: pd.DataFrame) -> bool:
        return bool(df["service_date"].is_monotonic_increasing)

    class Config:
        strict = True
        ordered = True
        coerce = True


class IngestRecord(pa.DataFrameModel):
    """What every record an ingest writes beside the clean store starts with: when, from which file."""

    ingested_at: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs={"unit": "us", "tz": "UTC"})
    source_file: Series[str]

    class Config:
        strict = True
        coerce = True


class QuarantineRecord(IngestRecord):
    """A raw row that failed validation: its line in the file and the rules it broke (the raw
    cells follow, as text, in the model of each file kind)."""

    source_line: Series[int] = pa.Field(ge=2)
    rules: Series[str]


class QuarantinedRow(QuarantineRecord):
    """A row of a totals file that failed validation, kept with the rules it broke."""

    service_date: Series[str] = pa.Field(nullable=True)
    day_type: Series[str] = pa.Field(nullable=True)
    bus: Series[str] = pa.Field(nullable=True)
    rail_boardings: Series[str] = pa.Field(nullable=True)
    total_rides: Series[str] = pa.Field(nullable=True)


class Revision(IngestRecord):
    """A totals value in the clean store that a newer snapshot changed."""

    service_date: Series[pd.Timestamp]
    column: Series[str] = pa.Field(isin=["day_type", "bus", "rail"])
    old_value: Series[str]
    new_value: Series[str]
