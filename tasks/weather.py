"""Prefect tasks for the weather: read what a source answered, merge the observed days into the
store, store a forecast vintage. Fetching is the ingest's (``flows/ingest.py``: retries, limits)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from storage import Store
from storage.weather_sources import OHARE_STATION
from tasks.core.data.weather import merge_observed, parse_ncei_csv, parse_open_meteo, read_observed_csv

LEASE = "weather"


@dataclass(frozen=True)
class ObservedUpdate:
    """What one answer did to the stored observed days."""

    source: str
    days_read: int
    added: int
    revised: int
    first_date: str | None  # of the answer's days
    last_date: str | None


@task(cache_policy=NO_CACHE)
def seed_observed(store: Store, data: bytes, source: str) -> ObservedUpdate | None:
    """The bundled history as the first observed days; None (nothing read) once any are stored:
    an older file must never stand in for what a source gave since."""
    with store.lock(LEASE, f"weather seeded from {source}"):
        if store.weather.has_observed():
            return None
        return _merge(store, read_observed_csv(data, source), source)


@task(cache_policy=NO_CACHE)
def merge_observed_answer(store: Store, data: bytes, source: str) -> ObservedUpdate:
    """An NCEI answer merged into the observed days, its values winning where it has some. The
    answer is read in full before the store is touched: a malformed one changes nothing."""
    days = parse_ncei_csv(data, source, station=OHARE_STATION)
    with store.lock(LEASE, f"weather merge from {source}"):
        return _merge(store, days, source)


def _merge(store: Store, days: pd.DataFrame, source: str) -> ObservedUpdate:
    merged = merge_observed(store.weather.read_observed(), days)
    if merged.changed:
        store.weather.write_observed(merged.observed)
    dates = days["date"]
    return ObservedUpdate(
        source=source, days_read=len(days), added=merged.added, revised=merged.revised,
        first_date=str(dates.min().date()) if len(days) else None, last_date=str(dates.max().date()) if len(days) else None,
    )


@task(cache_policy=NO_CACHE)
def store_forecast_vintage(store: Store, data: bytes, source: str, issued: pd.Timestamp) -> pd.DataFrame:
    """An Open-Meteo answer stored as the vintage issued on ``issued``; the rows stored."""
    vintage = parse_open_meteo(data, source, issued)
    store.weather.write_vintage(vintage)
    return vintage


@task(cache_policy=NO_CACHE)
def last_observed_date(store: Store) -> pd.Timestamp | None:
    dates = store.weather.read_observed()["date"]
    return dates.max() if len(dates) else None
