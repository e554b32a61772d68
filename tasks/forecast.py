"""Prefect tasks for the statistical models: which cutoffs are due, walk-forward, store."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping, Sequence

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from schemas.series import STATION_PREFIX
from storage import Store
from storage.events import read_event_schedule
from storage.source import SourceUnavailable
from tasks.core.data.events import schedule_coverage
from tasks.core.features.events import MAX_LEAD, event_frame, join_events
from tasks.core.features.weather import (
    NoiseModel, join_weather, observed_frame, oracle_vintages, simulated_vintages, vintage_frame,
)  # fmt: skip
from tasks.core.models.catalog import EVENT_MODELS, WEATHER_MODES, SarimaOptions, statistical_forecaster
from tasks.core.data.activity import history_from_series
from tasks.core.models.fallback import fallbacks
from tasks.core.walk_forward import TrainingWindow, historical_forecasts

WEATHER_SEED = 22
"""The simulated vintages' seed: the same vintage for a day in every run (docs/weather.md)."""


@task(cache_policy=NO_CACHE)
def load_history(store: Store, series: Sequence[str] | None = None) -> pd.DataFrame:
    """The clean store as a model history (``ds`` index; one column per series of ``series``,
    default all, and ``day_type``)."""
    return history_from_series(store.ridership.read_series(), series)


@task(cache_policy=NO_CACHE)
def weather_history(store: Store, history: pd.DataFrame, model: str, seed: int = WEATHER_SEED) -> pd.DataFrame:
    """``history`` with the weather columns ``model`` may read (``tasks/core/features/weather.py``):
    the observed weather, and the forecast vintages of its mode: the stored ones (``ridge_weather``),
    none (``_obs``), simulated from the observed weather (``_sim``) or the observed target days
    themselves (``_oracle``). Without observed weather in the store, ``history`` unchanged (the
    model then has only its calendar and the series)."""
    observed = store.weather.read_observed()
    observed = observed.set_index(pd.DatetimeIndex(observed["date"], name="ds")).drop(columns="date")
    if observed.empty:
        get_run_logger().warning("%s: no observed weather in the store; forecasting without weather", model)
        return history
    mode = WEATHER_MODES[model]
    days = history.index
    if mode == "vintages":
        vintages = store.weather.read_vintages(issued_until=days.max())
    elif mode == "simulated-forecast":
        vintages = simulated_vintages(observed, days, NoiseModel(), seed)
    elif mode == "oracle":
        vintages = oracle_vintages(observed, days)
    else:
        vintages = pd.DataFrame()
    return join_weather(history, [observed_frame(observed), vintage_frame(vintages)])


def event_history(history: pd.DataFrame, model: str, series: Sequence[str], schedule: str) -> pd.DataFrame:
    """``history`` with the game-day lead columns (``tasks/core/features/events.py``) when
    ``model`` reads them and ``series`` has a station; else unchanged. A schedule that cannot be
    reached is logged and the run goes on without it (forecasts need no games); one that is not
    a schedule raises."""
    if model not in EVENT_MODELS or not schedule or not any(s.startswith(STATION_PREFIX) for s in series):
        return history
    try:
        events = read_event_schedule(schedule)
    except SourceUnavailable as error:
        get_run_logger().warning("%s: no game schedule (%s); stations forecast without game days", model, error)
        return history
    coverage = schedule_coverage(events)
    horizon_end = history.index.max() + pd.Timedelta(days=MAX_LEAD)
    missing = sorted(venue for venue, seasons in coverage.items() if horizon_end.year not in seasons)
    if missing:
        get_run_logger().warning(
            "%s: the game schedule %s has no %d season for %s; stations forecast no games in it",
            model, schedule, horizon_end.year, ", ".join(missing),
        )
    return join_events(history, event_frame(events, history.index, coverage))


@task(cache_policy=NO_CACHE)
def cutoffs_to_run(
    store: Store, model: str, active: Mapping[str, Sequence[pd.Timestamp]], cutoffs: Sequence[pd.Timestamp],
    overwrite: bool,
) -> list[pd.Timestamp]:
    """The cutoffs at which a series active then (``active``: series → its cutoffs with data
    enough to forecast) has no stored forecast of ``model`` (every cutoff with ``overwrite``)."""
    if overwrite:
        return list(cutoffs)
    stored = store.forecasts.stored_by_series(model)
    wanted = {unique_id: set(days) for unique_id, days in active.items()}
    return [
        c for c in cutoffs
        if any(c in days and c not in stored.get(unique_id, set()) for unique_id, days in wanted.items())
    ]


@task(cache_policy=NO_CACHE)
def walk_forward(
    history: pd.DataFrame,
    model: str,
    series: Sequence[str],
    cutoffs: Sequence[pd.Timestamp],
    horizon: int,
    window: TrainingWindow,
    workers: int,
    sarima: SarimaOptions = SarimaOptions(),
    publication_lag: int = 0,
) -> pd.DataFrame:
    """Fit and forecast every (series, cutoff): refitted at each cutoff, cutoffs in parallel;
    each from the data up to ``publication_lag`` days before its cutoff."""
    return _walk_forward(history, model, series, cutoffs, horizon, window, workers, sarima, publication_lag)


def _walk_forward(
    history: pd.DataFrame, model: str, series: Sequence[str], cutoffs: Sequence[pd.Timestamp], horizon: int,
    window: TrainingWindow, workers: int, sarima: SarimaOptions, publication_lag: int = 0,
) -> pd.DataFrame:
    forecaster = statistical_forecaster(model, sarima)
    steps = horizon + publication_lag
    if getattr(forecaster, "max_horizon", steps) < steps:
        # A direct model (ridge) fits one regression per step ahead: with a publication lag it
        # forecasts lag + horizon steps from the data's end, so it needs that many regressions.
        forecaster = dataclasses.replace(forecaster, max_horizon=steps)
    return historical_forecasts(
        history, forecaster, list(series), list(cutoffs), horizon=horizon, window=window,
        refit_every=1, n_jobs=workers, publication_lag=publication_lag,
    )


@task(cache_policy=NO_CACHE)
def store_forecasts(store: Store, forecasts: pd.DataFrame, run_id: str, keep_stamps: bool = False) -> int:
    """Stamp the rows with the run and write them; each (cutoff, model, series) is replaced.
    ``keep_stamps``: rows read back from the store keep the run and time that made them (a
    calibrated model's bands as forecast, ``<model>@raw``)."""
    return _store_forecasts(store, forecasts, run_id, keep_stamps)


def _store_forecasts(store: Store, forecasts: pd.DataFrame, run_id: str, keep_stamps: bool = False) -> int:
    if forecasts.empty:
        return 0
    stamped = forecasts if keep_stamps else forecasts.assign(run_id=run_id, created_at=pd.Timestamp(datetime.now(timezone.utc)))
    written = store.forecasts.write(stamped)
    get_run_logger().info("stored %d forecast rows under %s", written, store.forecasts.path)
    return written


@dataclass(frozen=True)
class UnitOutcome:
    """What a work unit on a cluster reports back instead of its forecasts (it stored them)."""

    rows: int
    fallbacks: list[str]


@task(cache_policy=NO_CACHE, task_run_name="forecast-{model}-{unique_id}")
def forecast_unit(
    store: Store,
    model: str,
    unique_id: str,
    cutoffs: Sequence[pd.Timestamp],
    as_of: pd.Timestamp,
    horizon: int,
    window: TrainingWindow,
    run_id: str,
    sarima: SarimaOptions = SarimaOptions(),
    publication_lag: int = 0,
    event_schedule: str = "",
) -> UnitOutcome:
    """One work unit of a Dask worker: one series over a chunk of cutoffs, fitted one after the
    other in this worker (no process pool inside a worker). It reads the clean store up to
    ``as_of`` (the last date of the history the flow saw) and writes its forecast files itself,
    so only a few bytes travel back to the flow (docs/scale-out.md: measured)."""
    history = history_from_series(store.ridership.read_series([unique_id])).loc[:as_of]
    history = event_history(history, model, [unique_id], event_schedule)
    forecasts = _walk_forward(history, model, [unique_id], cutoffs, horizon, window, 1, sarima, publication_lag)
    return UnitOutcome(rows=_store_forecasts(store, forecasts, run_id), fallbacks=fallbacks(forecasts))
