"""Weather answers → the weather tables (:mod:`schemas.weather`), and the observed days merged.

* NCEI's Access Data Service, dataset ``daily-summaries``, ``format=csv&units=standard``: every
  field quoted, numbers right-aligned with spaces, an empty field where the station reported
  nothing; a data type with no value in the whole range may be left out of the header. Read as
  given (°F, inches, mph): :func:`parse_ncei_csv`.
* Open-Meteo's forecast API (JSON): ``daily.time`` and one array per variable, the unit of each
  in ``daily_units``, ``null`` where a model gives nothing. Converted by the unit the answer
  declares, not the one asked for: Open-Meteo gave snowfall in cm whatever
  ``precipitation_unit`` said until early 2023 (open-meteo/open-meteo#136): :func:`parse_open_meteo`.
* The project's own daily file (the bundled history): :func:`read_observed_csv`, written by
  :func:`observed_csv`; :func:`standard_units` turns the metric copy it was built from into it.

Pure functions: bytes and frames in, frames out.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from schemas.weather import (
    OBSERVED_COLUMNS, OBSERVED_VARIABLES, ForecastVintage, ObservedWeather, WeatherDataError,
    check_weather, empty_observed,
)  # fmt: skip

NCEI_DATA_TYPES = {"TMAX": "tmax_f", "TMIN": "tmin_f", "PRCP": "prcp_in", "SNOW": "snow_in", "SNWD": "snwd_in", "AWND": "awnd_mph"}
OPEN_METEO_DAILY = {
    "temperature_2m_max": "tmax_f", "temperature_2m_min": "tmin_f", "precipitation_sum": "prcp_in", "snowfall_sum": "snow_in",
}
# The decimals NOAA's standard units carry (whole °F, hundredths of an inch of rain, tenths of an
# inch of snow, hundredths of a mph): the bundled file keeps them, so a value reads as NCEI gives it.
DECIMALS = {"tmax_f": 0, "tmin_f": 0, "prcp_in": 2, "snow_in": 1, "snwd_in": 1, "awnd_mph": 2}
MPH_PER_METRE_PER_SECOND = 3600 / 1609.344
# Open-Meteo's unit names (its SiUnit), each → a function giving °F or inches.
_TO_STANDARD = {
    "°F": lambda v: v, "°C": lambda v: v * 9 / 5 + 32,
    "inch": lambda v: v, "mm": lambda v: v / 25.4, "cm": lambda v: v / 2.54,
}


def _text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise WeatherDataError(f"{source}: not UTF-8 text (byte {error.start})") from None


def parse_ncei_csv(data: bytes, source: str, station: str | None = None) -> pd.DataFrame:
    """NCEI daily summaries (standard units) → :class:`ObservedWeather` rows. An empty answer
    (no day of the range published yet) is no rows; anything that is not the service's CSV, a
    cell that is not a number or a row of another station raises one line."""
    text = _text(data, source)
    if not text.strip():
        return check_weather(empty_observed(), ObservedWeather, source)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        raw_header = next(reader)
        header = [name.strip().upper() for name in raw_header]
        records = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise WeatherDataError(f"{source}: unreadable CSV at line {reader.line_num}: {error}") from None
    if "DATE" not in header or not set(NCEI_DATA_TYPES) & set(header):
        found = ", ".join(raw_header)[:200] or "none"
        raise WeatherDataError(f"{source}: not an NCEI daily-summaries CSV: missing DATE or every data type (found: {found})")
    lines = [f"line {line}" for line, _ in records]
    uneven = [line for line, row in records if len(row) != len(header)]
    if uneven:
        raise WeatherDataError(f"{source}: line {uneven[0]}: not {len(header)} fields like the header")
    cells = pd.DataFrame([row for _, row in records], columns=header, dtype="object")
    cells = cells.apply(lambda column: column.str.strip()) if len(cells) else cells
    if station is not None and "STATION" in cells and (cells["STATION"] != station).any():
        where = lines[int(np.argmax((cells["STATION"] != station).to_numpy()))]
        raise WeatherDataError(f"{source}: {where}: STATION is not {station}")
    frame = pd.DataFrame({"date": _dates(cells["DATE"], lines, source)})
    for data_type, column in NCEI_DATA_TYPES.items():
        frame[column] = _numbers(cells, data_type, lines, source)
    # The service answers in date order; should it not, the order is no error (the labels follow).
    order = np.argsort(frame["date"].to_numpy(), kind="stable")
    return check_weather(frame.iloc[order], ObservedWeather, source, [lines[i] for i in order])


def _dates(text: pd.Series, rows: list[str], source: str) -> pd.Series:
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        position = int(np.argmax(dates.isna().to_numpy()))
        raise WeatherDataError(f"{source}: {rows[position]}: date: not YYYY-MM-DD (got {text.iloc[position]!r})")
    return dates.astype("datetime64[ns]")


def _numbers(cells: pd.DataFrame, name: str, rows: list[str], source: str) -> pd.Series:
    """A column of numbers; NaN where the cell is empty or the column absent."""
    if name not in cells:
        return pd.Series(np.nan, index=cells.index, dtype="float64")
    text = cells[name]
    numbers = pd.to_numeric(text.where(text != ""), errors="coerce").astype("float64")
    bad = numbers.isna() & (text != "")
    if bad.any():
        position = int(np.argmax(bad.to_numpy()))
        raise WeatherDataError(f"{source}: {rows[position]}: {name}: not a number (got {text.iloc[position]!r})")
    return numbers


def parse_open_meteo(data: bytes, source: str, issued: pd.Timestamp) -> pd.DataFrame:
    """An Open-Meteo daily forecast → the :class:`ForecastVintage` issued on ``issued``; the
    answer must start on that day (a forecast fetched on another day is not that day's vintage).
    A variable the answer leaves out is NaN; a unit this reader does not know raises one line."""
    issued = pd.Timestamp(issued).normalize()
    try:
        answer = json.loads(_text(data, source))
    except json.JSONDecodeError as error:
        raise WeatherDataError(f"{source}: not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(answer, dict):
        raise WeatherDataError(f"{source}: not an Open-Meteo answer (a JSON {type(answer).__name__})")
    if answer.get("error"):
        raise WeatherDataError(f"{source}: the service refused the request: {answer.get('reason', 'no reason given')}")
    daily, units = answer.get("daily"), answer.get("daily_units")
    if not isinstance(daily, dict) or not isinstance(units, dict) or not isinstance(daily.get("time"), list):
        raise WeatherDataError(f"{source}: not an Open-Meteo daily forecast (no daily.time and daily_units)")
    rows = [f"daily[{i}]" for i in range(len(daily["time"]))]
    ds = _dates(pd.Series(daily["time"], dtype="object").astype(str), rows, source)
    if len(ds) == 0 or ds.iloc[0] != issued:
        first = ds.iloc[0].date() if len(ds) else "nothing"
        raise WeatherDataError(f"{source}: the forecast starts on {first}, not on the issue date {issued.date()}")
    frame = pd.DataFrame({"issued": issued, "ds": ds, "lead": (ds - issued).dt.days.astype("int64")})
    for name, column in OPEN_METEO_DAILY.items():
        frame[column] = _converted(daily, units, name, len(ds), source)
    return check_weather(frame, ForecastVintage, source, rows)


def _converted(daily: dict, units: dict, name: str, length: int, source: str) -> pd.Series:
    values = daily.get(name)
    if values is None:
        return pd.Series(np.nan, index=range(length), dtype="float64")
    if not isinstance(values, list) or len(values) != length:
        raise WeatherDataError(f"{source}: daily.{name}: not one value per day of daily.time")
    unit = units.get(name)
    if unit not in _TO_STANDARD:
        raise WeatherDataError(f"{source}: daily_units.{name}: unit {unit!r} not understood (known: {', '.join(_TO_STANDARD)})")
    numbers = pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce").astype("float64")
    if (numbers.isna() & pd.Series([v is not None for v in values])).any():
        raise WeatherDataError(f"{source}: daily.{name}: a value that is not a number")
    # Converted values keep the precision Open-Meteo gives in the target unit (0.1 °F, 0.001 in).
    return _TO_STANDARD[unit](numbers).round(1 if unit in ("°F", "°C") else 3)


@dataclass(frozen=True)
class ObservedMerge:
    observed: pd.DataFrame
    added: int  # days not stored before
    revised: int  # stored values the newer rows changed (a value where there was none counts)

    @property
    def changed(self) -> bool:
        return self.added > 0 or self.revised > 0


def merge_observed(stored: pd.DataFrame, newer: pd.DataFrame) -> ObservedMerge:
    """``newer`` over ``stored`` by date: the newer value wins wherever it has one; where it has
    none the stored value stays (a source that has not published a day's wind yet must not erase
    the wind a fuller copy gave)."""
    old = stored.set_index("date")[list(OBSERVED_VARIABLES)]
    new = newer.set_index("date")[list(OBSERVED_VARIABLES)]
    merged = new.combine_first(old).sort_index()
    both = old.index.intersection(new.index)
    before, after = old.loc[both], merged.loc[both]
    changed = ~((before == after) | (before.isna() & after.isna()))
    frame = merged.reset_index()[OBSERVED_COLUMNS]
    validated = check_weather(frame, ObservedWeather, "merged weather")
    return ObservedMerge(observed=validated, added=len(new.index.difference(old.index)), revised=int(changed.to_numpy().sum()))


def standard_units(metric: pd.DataFrame) -> pd.DataFrame:
    """A metric daily table (``date, tmax_c, tmin_c, prcp_mm, snow_mm, snwd_mm, awnd_ms``, GHCN's
    own tenths of °C and mm) in NOAA's standard units, rounded as NCEI rounds them (half up, to
    :data:`DECIMALS`): over 2018-01-01..2019-04-28 it gives NCEI's standard-units file back."""
    converted = pd.DataFrame({"date": pd.to_datetime(metric["date"]).astype("datetime64[ns]")})
    sources = {
        "tmax_f": metric["tmax_c"] * 9 / 5 + 32, "tmin_f": metric["tmin_c"] * 9 / 5 + 32,
        "prcp_in": metric["prcp_mm"] / 25.4, "snow_in": metric["snow_mm"] / 25.4, "snwd_in": metric["snwd_mm"] / 25.4,
        "awnd_mph": metric["awnd_ms"] * MPH_PER_METRE_PER_SECOND,
    }
    for column, values in sources.items():
        scale = 10 ** DECIMALS[column]
        # The epsilon keeps binary noise (36.49999…) from turning an exact half down.
        converted[column] = np.floor(values.astype("float64") * scale + 0.5 + 1e-9) / scale
    return check_weather(converted, ObservedWeather, "metric weather")


def observed_csv(observed: pd.DataFrame) -> bytes:
    """The daily file's bytes: ``date,tmax_f,…`` with each variable at its :data:`DECIMALS`, an
    empty cell for NaN, LF line ends (byte for byte reproducible)."""
    lines = [",".join(OBSERVED_COLUMNS)]
    columns = {c: [_cell(v, DECIMALS[c]) for v in observed[c]] for c in OBSERVED_VARIABLES}
    for i, day in enumerate(observed["date"]):
        lines.append(",".join([day.strftime("%Y-%m-%d"), *(columns[c][i] for c in OBSERVED_VARIABLES)]))
    return ("\n".join(lines) + "\n").encode()


def _cell(value: float, decimals: int) -> str:
    # + 0.0 turns -0.0 into 0.0, so a zero is never written "-0".
    return "" if pd.isna(value) else f"{round(float(value), decimals) + 0.0:.{decimals}f}"


def read_observed_csv(data: bytes, source: str) -> pd.DataFrame:
    """The project's daily file (:func:`observed_csv`'s format) → :class:`ObservedWeather`."""
    text = _text(data, source)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype={c: "float64" for c in OBSERVED_VARIABLES}, keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError) as error:
        raise WeatherDataError(f"{source}: unreadable daily weather file ({str(error).splitlines()[0]})") from None
    missing = [c for c in OBSERVED_COLUMNS if c not in frame.columns]
    if missing:
        raise WeatherDataError(f"{source}: missing columns {', '.join(missing)} (found: {', '.join(frame.columns)})")
    lines = [f"line {i + 2}" for i in range(len(frame))]
    frame["date"] = _dates(frame["date"].astype(str), lines, source)
    return check_weather(frame[OBSERVED_COLUMNS], ObservedWeather, source, lines)


def observed_window(last_stored: pd.Timestamp | None, end: pd.Timestamp, days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The days to ask the observed source for, both included: the last ``days`` up to ``end``
    (NCEI fills and corrects recent days for a while), reaching back to the day after the last
    stored one when the store stops earlier (a gap left by runs that could not fetch)."""
    end = pd.Timestamp(end).normalize()
    start = end - pd.Timedelta(days=days - 1)
    if last_stored is not None and pd.Timestamp(last_stored) + pd.Timedelta(days=1) < start:
        start = pd.Timestamp(last_stored) + pd.Timedelta(days=1)
    return start, end
