"""Weather flow: O'Hare's observed days merged into the store, today's forecast kept as a vintage.

Optional data: a source that fails is logged and said in the summary line, never raised, so the
nightly's forecasts run with or without weather (the models must not need it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
from prefect import flow, get_run_logger

from flows.ingest import fetch_with_retries, read_snapshot
from flows.settings import Settings
from schemas.errors import ExpectedFailure
from storage import Store
from storage.weather_sources import forecast_request, observed_request
from tasks.core.data.weather import observed_window
from tasks.weather import ObservedUpdate, last_observed_date, merge_observed_answer, seed_observed, store_forecast_vintage

SERVICE_TIMEZONE = ZoneInfo("America/Chicago")


@dataclass(frozen=True)
class WeatherSummary:
    run_date: str
    observed_through: str | None  # the last observed day the run's cutoff may see (run date - 1)
    observed: str  # what happened to the observed days, in words
    vintage_issued: str | None  # the run date, when its forecast vintage is stored
    forecast: str  # what happened to the forecast, in words

    @property
    def line(self) -> str:
        """One sentence for the nightly summary and the report."""
        return f"Weather: {self.observed}; {self.forecast}."


@flow(name="weather", log_prints=True)
def weather(run_date: date | None = None) -> WeatherSummary:
    """Merge the last days of O'Hare's observed weather (NOAA NCEI) into the store, seeding an
    empty store from the bundled 1995-2024 history, and store the daily forecast fetched now
    (Open-Meteo) as the vintage issued on the run date. A source that fails is reported in the
    summary, not raised.

    Args:
        run_date: The day the run is for (YYYY-MM-DD): observed days up to the day before are
            fetched, and the forecast is stored only if it starts on this day. Default: today in
            America/Chicago.
    """
    settings = Settings.from_env()
    store = Store.open_writable(settings.storage, settings.lock_policy())
    day = pd.Timestamp(run_date or datetime.now(SERVICE_TIMEZONE).date())
    observed = _observed(store, settings, day)
    through = store.weather.read_observed(end=day - pd.Timedelta(days=1))["date"]
    observed_through = str(through.max().date()) if len(through) else None
    observed = f"observed through {observed_through} ({observed})" if observed_through else f"no observed days ({observed})"
    vintage_issued, forecast = _forecast(store, settings, day)
    summary = WeatherSummary(str(day.date()), observed_through, observed, vintage_issued, forecast)
    get_run_logger().info(summary.line)
    return summary


def seed_from_snapshot(store: Store, settings: Settings) -> str | None:
    """Seed a store without observed weather from the bundled history; what happened, in words
    (None when the store had weather or no snapshot is configured). Also run before a backtest
    of a weather-aware model, which needs the history."""
    if not settings.weather_offline_snapshot or store.weather.has_observed():
        return None  # seed_observed checks again under its lock; this only spares the read
    try:
        seeded = seed_observed(store, read_snapshot(settings.weather_offline_snapshot, settings), settings.weather_offline_snapshot)
    except ExpectedFailure as error:
        get_run_logger().error("weather: the bundled weather snapshot could not be read: %s", error)
        return f"the bundled weather snapshot could not be read: {error}"
    if seeded is None:
        return None
    said = f"bundled weather snapshot seeded the empty store with {seeded.first_date} .. {seeded.last_date}"
    get_run_logger().warning("weather: %s", said)
    return said


def _observed(store: Store, settings: Settings, day: pd.Timestamp) -> str:
    """Seed an empty store, then fetch the recent days; what happened, in words."""
    logger = get_run_logger()
    seeded = seed_from_snapshot(store, settings)
    parts = [seeded] if seeded else []
    if not settings.weather_observed_source:
        return "; ".join([*parts, "observed source off"])
    start, end = observed_window(last_observed_date(store), day - pd.Timedelta(days=1), settings.weather_observed_days)
    url = observed_request(settings.weather_observed_source, start, end)
    try:
        parts.append(_said(merge_observed_answer(store, fetch_with_retries(url, settings), url), start, end))
    except ExpectedFailure as error:
        parts.append(f"the observed source failed: {error}")
        logger.warning("weather: %s", parts[-1])
    return "; ".join(parts)


def _said(update: ObservedUpdate, start: pd.Timestamp, end: pd.Timestamp) -> str:
    return (
        f"NCEI asked for {start.date()} .. {end.date()}: {update.days_read} day(s) answered, "
        f"{update.added} added, {update.revised} value(s) revised"
    )


def _forecast(store: Store, settings: Settings, day: pd.Timestamp) -> tuple[str | None, str]:
    """Store the forecast fetched now as the run date's vintage; (issue date or None, in words)."""
    issued = str(day.date())
    if not settings.weather_forecast_source:
        return None, "no forecast vintage (forecast source off)"
    if day in store.weather.vintage_dates():
        # The first run's vintage is the one its forecasts were made with: a rerun keeps it.
        return issued, f"forecast vintage issued {issued} (already stored, kept)"
    url = forecast_request(settings.weather_forecast_source)
    try:
        vintage = store_forecast_vintage(store, fetch_with_retries(url, settings), url, day)
    except ExpectedFailure as error:
        get_run_logger().warning("weather: no forecast vintage for %s: %s", issued, error)
        return None, f"no forecast vintage for {issued} (the forecast source failed: {error})"
    return issued, f"forecast vintage issued {issued}, {len(vintage)} day(s) to {vintage['ds'].max().date()}"
