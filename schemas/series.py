"""The long-format clean store: one row per (series, service date), for every series the job
knows — the system totals ``bus`` and ``rail``, each bus route ``route:<route>`` and each 'L'
station ``station:<station_id>``, and the series derived from them at ingest (``rail_entries``,
the daily sum of the station entries) — plus the small catalog of series names, and the records that
ingest of a route or station file writes beside them (quarantine, revisions).

The system totals keep their wide view (:class:`schemas.ridership.CleanRidership`, one row per
date with ``bus`` and ``rail``): :func:`totals_to_long` and :func:`long_to_totals` convert
between the two without changing a value, so every bus/rail figure stays what it was.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas.ridership import DAY_TYPES, EARLIEST_SERVICE_DATE, MAX_DAILY_BOARDINGS, CleanRidership, IngestRecord, QuarantineRecord

TOTAL_SERIES = ("bus", "rail")
DERIVED_SERIES = ("rail_entries",)
"""Series the job computes at ingest rather than reads from a file: a hierarchy's parent, the
daily sum of its children in the store (``rail_entries``: every 'L' station's entries;
:mod:`tasks.core.data.derived`). A new parent needs its id here, so the store accepts it."""
ROUTE_PREFIX = "route:"
STATION_PREFIX = "station:"
ROUTE_ID = r"[A-Za-z0-9]{1,8}"
STATION_ID = r"[0-9]{1,8}"
SERIES_ID_PATTERN = rf"^(bus|rail|{'|'.join(DERIVED_SERIES)}|route:{ROUTE_ID}|station:{STATION_ID})$"
SERIES_KINDS = ["total", "derived", "route", "station"]
LONG_COLUMNS = ["unique_id", "service_date", "day_type", "y"]
# The portal's three daily files (their headers decide which a file is).
TOTALS, ROUTES, STATIONS = "totals", "routes", "stations"
ROUTE_COLUMNS = ("route", "date", "daytype", "rides")
STATION_COLUMNS = ("station_id", "stationname", "date", "daytype", "rides")


class CleanSeries(pa.DataFrameModel):
    """The clean store: one row per (unique_id, service_date), sorted by both."""

    unique_id: Series[str] = pa.Field(str_matches=SERIES_ID_PATTERN)
    service_date: Series[pd.Timestamp] = pa.Field(nullable=False, ge=EARLIEST_SERVICE_DATE)
    day_type: Series[str] = pa.Field(nullable=False, isin=DAY_TYPES)
    y: Series[int] = pa.Field(nullable=False, ge=0, le=MAX_DAILY_BOARDINGS)

    @pa.dataframe_check(name="one_row_per_series_and_date")
    def unique_key(cls, df: pd.DataFrame) -> bool:
        return not bool(df.duplicated(["unique_id", "service_date"]).any())

    @pa.dataframe_check(name="sorted_by_series_and_date")
    def sorted_key(cls, df: pd.DataFrame) -> bool:
        return bool(df.sort_values(["unique_id", "service_date"], kind="stable").index.equals(df.index))

    class Config:
        strict = True
        ordered = True
        coerce = True


class SeriesInfo(pa.DataFrameModel):
    """The catalog: what each route, station or derived series is (names change; ids do not)."""

    unique_id: Series[str] = pa.Field(str_matches=SERIES_ID_PATTERN, unique=True)
    kind: Series[str] = pa.Field(isin=SERIES_KINDS)
    name: Series[str]
    first_date: Series[pd.Timestamp]
    last_date: Series[pd.Timestamp]
    rows: Series[int] = pa.Field(ge=0)

    class Config:
        strict = True
        coerce = True


class RawSeriesRides(pa.DataFrameModel):
    """One parsed row of a route or station file (rides as float, so a fraction is reported)."""

    unique_id: Series[str] = pa.Field(nullable=True, str_matches=SERIES_ID_PATTERN)
    service_date: Series[pd.Timestamp] = pa.Field(nullable=False, ge=EARLIEST_SERVICE_DATE)
    day_type: Series[str] = pa.Field(nullable=False, isin=DAY_TYPES)
    y: Series[float] = pa.Field(nullable=False, ge=0, le=MAX_DAILY_BOARDINGS)

    @pa.check("y", name="whole_number")
    def whole_number(cls, values: Series[float]) -> Series[bool]:
        return values.isna() | (values == values.round())

    class Config:
        strict = True
        coerce = False


class QuarantinedSeriesRow(QuarantineRecord):
    """A route or station row that failed validation, as text, with its rules and origin."""

    series: Series[str] = pa.Field(nullable=True, description="the route or station_id cell")
    date: Series[str] = pa.Field(nullable=True)
    daytype: Series[str] = pa.Field(nullable=True)
    rides: Series[str] = pa.Field(nullable=True)


class SeriesRevision(IngestRecord):
    """A clean value of a route or station series that a newer file changed."""

    unique_id: Series[str]
    service_date: Series[pd.Timestamp]
    column: Series[str] = pa.Field(isin=["day_type", "y"])
    old_value: Series[str]
    new_value: Series[str]


def empty_long() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": pd.Series(dtype=str), "service_date": pd.Series(dtype="datetime64[ns]"),
            "day_type": pd.Series(dtype=str), "y": pd.Series(dtype="int64"),
        }
    )


def sort_long(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[LONG_COLUMNS].sort_values(["unique_id", "service_date"], kind="stable").reset_index(drop=True)


def totals_to_long(clean: pd.DataFrame) -> pd.DataFrame:
    """The wide totals (``service_date, day_type, bus, rail``) as ``bus`` and ``rail`` rows."""
    long = clean.melt(id_vars=["service_date", "day_type"], value_vars=list(TOTAL_SERIES), var_name="unique_id", value_name="y")
    return sort_long(long.astype({"y": "int64"}))


def long_to_totals(long: pd.DataFrame) -> pd.DataFrame:
    """The ``bus`` and ``rail`` rows as the wide totals frame; dates need both (they come from
    one line of the totals file)."""
    totals = long[long["unique_id"].isin(TOTAL_SERIES)]
    wide = totals.pivot(index=["service_date", "day_type"], columns="unique_id", values="y").reset_index()
    for column in TOTAL_SERIES:
        if column not in wide.columns:
            wide[column] = pd.Series(dtype="int64")
    wide = wide.dropna(subset=list(TOTAL_SERIES))
    wide.columns.name = None
    frame = wide[["service_date", "day_type", *TOTAL_SERIES]].astype({"bus": "int64", "rail": "int64"})
    return CleanRidership.validate(frame.sort_values("service_date").reset_index(drop=True), lazy=True)


def series_kind(unique_id: str) -> str:
    if unique_id in DERIVED_SERIES:
        return "derived"
    if unique_id.startswith(ROUTE_PREFIX):
        return "route"
    if unique_id.startswith(STATION_PREFIX):
        return "station"
    return "total"
