"""Where the weather comes from: the requests for O'Hare's observed days and its daily forecast.
The bytes are fetched by :func:`storage.source.fetch_source` (timeouts, size cap, transient or
permanent errors) and read by :mod:`tasks.core.data.weather`.

* Observed: NOAA NCEI's Access Data Service (no key; NOAA data are US government works, free of
  copyright), dataset ``daily-summaries`` (GHCN-Daily) for station USW00094846, in standard units.
* Forecast: Open-Meteo's forecast API (no key on the free tier, which its terms limit to
  non-commercial use; data under CC BY 4.0, credit "Weather data by Open-Meteo.com"), today and
  the next 15 days. A commercial deployment points ``RIDERSHIP_WEATHER_FORECAST_SOURCE`` at
  Open-Meteo's paid endpoint (its ``apikey`` parameter in the URL) or turns the forecast off.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd

NCEI_DAILY_SUMMARIES = "https://www.ncei.noaa.gov/access/services/data/v1"
OPEN_METEO_FORECAST = "https://api.open-meteo.com/v1/forecast"
OHARE_STATION = "USW00094846"
# The station's coordinates (NCEI station list); Open-Meteo answers for the model cell around them.
OHARE_LATITUDE, OHARE_LONGITUDE = 41.9786, -87.9048
FORECAST_DAYS = 16  # Open-Meteo's most: today and 15 days after, enough for h = 1..14 from yesterday's cutoff
SERVICE_TIMEZONE = "America/Chicago"


def _with_query(base: str, query: dict[str, str]) -> str:
    # A base URL may carry its own parameters (a paid plan's apikey); ours are appended.
    return f"{base}{'&' if '?' in base else '?'}{urlencode(query, safe=',/')}"


def observed_request(base: str, start: pd.Timestamp, end: pd.Timestamp, station: str = OHARE_STATION) -> str:
    """The URL of the station's daily summaries from ``start`` to ``end`` (both included)."""
    return _with_query(base, {
        "dataset": "daily-summaries", "stations": station, "startDate": f"{pd.Timestamp(start).date()}",
        "endDate": f"{pd.Timestamp(end).date()}", "dataTypes": "TMAX,TMIN,PRCP,SNOW,SNWD,AWND", "units": "standard",
        "format": "csv",
    })  # fmt: skip


def forecast_request(base: str) -> str:
    """The URL of the daily forecast for O'Hare, starting today in Chicago, in °F and inches."""
    return _with_query(base, {
        "latitude": f"{OHARE_LATITUDE}", "longitude": f"{OHARE_LONGITUDE}",
        "daily": "temperature_2m_max,temperature_2m_min,precipitation_sum,snowfall_sum",
        "temperature_unit": "fahrenheit", "precipitation_unit": "inch", "forecast_days": f"{FORECAST_DAYS}",
        "timezone": SERVICE_TIMEZONE,
    })  # fmt: skip
