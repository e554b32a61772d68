"""The 'L' stops list (Chicago Data Portal, "CTA - System Information - List of 'L' Stops") read
into one row per station: where the report's map puts each ``station:<MAP_ID>``.

The portal's file has one row per platform direction; ``MAP_ID`` is the station id of the
ridership file and ``Location`` a text "(lat, lon)"."""

from __future__ import annotations

import io
import re

import pandas as pd

from schemas.errors import InvalidInput
from storage.source import fetch_source

LOCATION_COLUMNS = ["station_id", "name", "lat", "lon"]
_NEEDED = ("MAP_ID", "STATION_NAME", "Location")
_POINT = re.compile(r"^\(\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)$")
_MAX_BYTES = 16 * 2**20  # the list is 47 KB; anything this large is not it


def read_station_locations(source: str) -> pd.DataFrame:
    """The stops list at ``source`` (a path or any URL :func:`storage.source.fetch_source` reads)
    as ``station_id, name, lat, lon``. Raises ``SourceUnavailable`` or ``InvalidInput``."""
    return parse_station_locations(fetch_source(source, _MAX_BYTES), source)


def parse_station_locations(data: bytes, source: str = "stops list") -> pd.DataFrame:
    """One row per ``MAP_ID``, sorted: its first ``STATION_NAME`` and the mean of its platforms'
    coordinates (the platforms of one station lie metres apart). A station none of whose
    platforms has a readable ``Location`` keeps NaN coordinates, so it can be listed as unplaced."""
    try:
        rows = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise InvalidInput(f"{source}: not a readable CSV ({error})") from error
    missing = [c for c in _NEEDED if c not in rows.columns]
    if missing:
        raise InvalidInput(f"{source}: not the 'L' stops list (no column {', '.join(missing)})")
    points = rows["Location"].str.strip().str.extract(_POINT).astype(float)
    frame = pd.DataFrame({
        "station_id": rows["MAP_ID"].str.strip(), "name": rows["STATION_NAME"].str.strip(),
        "lat": points[0], "lon": points[1],
    })  # fmt: skip
    frame = frame[frame["station_id"] != ""]
    stations = frame.groupby("station_id", sort=True).agg(name=("name", "first"), lat=("lat", "mean"), lon=("lon", "mean"))
    return stations.reset_index()[LOCATION_COLUMNS]
