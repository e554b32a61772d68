"""Daily weather under the storage root: what was observed, and every forecast as it was issued.

Layout::

    weather/observed.parquet                       one row per day (schemas.weather.ObservedWeather),
                                                   rewritten whole at each merge (atomically)
    weather/forecast/issued=YYYY-MM-DD/part.parquet   the forecast fetched that day: ds, lead and
                                                   the variables (the issue date lives in the
                                                   folder name only, the Hive convention)

The forecasts are kept as vintages because a backtest must see the forecast that had been issued
by its cutoff, never a later one and never the weather that happened: :meth:`read_vintages`
answers "every vintage issued on or before a date" (the as-of rule).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from schemas.weather import (
    OBSERVED_COLUMNS, OBSERVED_VARIABLES, VINTAGE_COLUMNS, ForecastVintage, ObservedWeather, WeatherDataError,
    check_weather, empty_observed, empty_vintages,
)  # fmt: skip
from storage.fs import Root

WEATHER = "weather"
OBSERVED_FILE = "observed.parquet"
FORECAST = "forecast"
VINTAGE_FILE = "part.parquet"
ISSUED_PREFIX = "issued="
OBSERVED_ARROW_SCHEMA = pa.schema([("date", pa.date32()), *((c, pa.float64()) for c in OBSERVED_VARIABLES)])
VINTAGE_ARROW_SCHEMA = pa.schema(
    [("ds", pa.date32()), ("lead", pa.int64()), *((c, pa.float64()) for c in VINTAGE_COLUMNS[3:])]
)


class WeatherStore:
    def __init__(self, root: Root) -> None:
        self.root = root

    @property
    def observed_path(self) -> str:
        return self.root.join(WEATHER, OBSERVED_FILE)

    def has_observed(self) -> bool:
        return self.root.exists(self.observed_path)

    def read_observed(self, end: pd.Timestamp | str | None = None) -> pd.DataFrame:
        """The observed days, up to and including ``end`` when given (empty before the first write)."""
        if not self.has_observed():
            return check_weather(empty_observed(), ObservedWeather, self.root.url(self.observed_path))
        frame = self.root.read_table(self.observed_path).to_pandas()
        frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
        if end is not None:
            frame = frame[frame["date"] <= pd.Timestamp(end)]
        return check_weather(frame, ObservedWeather, self.root.url(self.observed_path))

    def write_observed(self, observed: pd.DataFrame) -> None:
        """Replace the observed days with ``observed`` (a caller merging into them holds the
        ``weather`` lease: see :mod:`storage.locks`)."""
        validated = check_weather(observed[OBSERVED_COLUMNS], ObservedWeather, "observed weather")
        table = pa.Table.from_pandas(validated, schema=OBSERVED_ARROW_SCHEMA, preserve_index=False)
        self.root.write_table_atomic(self.observed_path, table)

    def _vintage_path(self, issued: pd.Timestamp) -> str:
        return self.root.join(WEATHER, FORECAST, f"{ISSUED_PREFIX}{issued.date()}", VINTAGE_FILE)

    def write_vintage(self, frame: pd.DataFrame) -> str:
        """Store one vintage (every row of ``frame`` issued the same day), replacing a vintage of
        that issue date; returns its URL."""
        vintage = check_weather(frame, ForecastVintage, "forecast vintage")
        issued = vintage["issued"].unique()
        if len(issued) != 1:
            raise WeatherDataError(f"forecast vintage: one issue date per vintage, got {len(issued)}")
        vintage = vintage.sort_values("ds")
        table = pa.Table.from_pandas(vintage.drop(columns="issued"), schema=VINTAGE_ARROW_SCHEMA, preserve_index=False)
        path = self._vintage_path(pd.Timestamp(issued[0]))
        self.root.write_table_atomic(path, table)
        return self.root.url(path)

    def vintage_dates(self) -> list[pd.Timestamp]:
        """The issue dates of the stored vintages, oldest first."""
        folders = self.root.listdir(self.root.join(WEATHER, FORECAST))
        dates = [pd.Timestamp(name[len(ISSUED_PREFIX):]) for name in folders if name.startswith(ISSUED_PREFIX)]
        return sorted(d for d in dates if self.root.exists(self._vintage_path(d)))

    def read_vintages(
        self, issued_until: pd.Timestamp | str | None = None, issued_from: pd.Timestamp | str | None = None
    ) -> pd.DataFrame:
        """Every vintage issued on or before ``issued_until`` (and on or after ``issued_from``),
        sorted by (issued, ds): what was known of the coming weather by that day."""
        wanted = [
            day for day in self.vintage_dates()
            if (issued_until is None or day <= pd.Timestamp(issued_until)) and (issued_from is None or day >= pd.Timestamp(issued_from))
        ]  # fmt: skip
        frames = []
        for day in wanted:
            frame = self.root.read_table(self._vintage_path(day)).to_pandas()
            frame.insert(0, "issued", day)
            frames.append(frame)
        if not frames:
            return check_weather(empty_vintages(), ForecastVintage, "forecast vintages")
        vintages = pd.concat(frames, ignore_index=True)
        for column in ("issued", "ds"):
            vintages[column] = pd.to_datetime(vintages[column]).astype("datetime64[ns]")
        return check_weather(vintages, ForecastVintage, self.root.url(self.root.join(WEATHER, FORECAST)))
