"""Nightly flow: ingest, then forecast the run date's cutoff with every model, retrain the RNNs
when due, score what has matured and write the report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Sequence
from zoneinfo import ZoneInfo

import pandas as pd
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.common import ForecastProgress, default_models, forecast_cutoffs, score_and_report, training_window
from flows.series import model_series, resolve_settings_series, with_totals
from flows.ingest import ingest
from flows.settings import Settings
from flows.weather import weather
from schemas.errors import DegradedRun, Unavailable
from storage import Store
from tasks.core.models.catalog import is_rnn
from tasks.evaluate import ReportOutcome
from tasks.ingest import IngestSummary
from tasks.forecast import load_history
from tasks.regimes import detect_regimes

SERVICE_TIMEZONE = ZoneInfo("America/Chicago")


@dataclass(frozen=True)
class NightlySummary:
    run_date: str
    cutoff: str
    lag_days: int
    ingest_error: str | None
    data_used: str
    retrained: list[str]
    regime_alerts: list[str]
    progress: ForecastProgress
    report: ReportOutcome
    forecasts_path: str
    weather: str = ""  # which weather the run had (flows/weather.py), one sentence


def logical_run_date(explicit: date | None, scheduled: datetime | None, now: datetime) -> date:
    """The day a run is for: the parameter, else the slot the schedule created the run for (in
    Chicago time, so a late or replayed run forecasts the right day), else today in Chicago."""
    if explicit is not None:
        return explicit
    moment = scheduled if scheduled is not None else now
    return moment.astimezone(SERVICE_TIMEZONE).date()


def nightly_cutoff(run_date: date, last_service_date: pd.Timestamp) -> tuple[pd.Timestamp, int]:
    """The last complete service date on or before the day before ``run_date``, and by how many
    days the data lags behind that day."""
    wanted = pd.Timestamp(run_date) - pd.Timedelta(days=1)
    cutoff = min(wanted, last_service_date)
    return cutoff, int((wanted - cutoff).days)


@flow(name="nightly", log_prints=True)
def nightly(run_date: date | None = None) -> NightlySummary:
    """Ingest, retrain the RNNs when due, forecast the run date's cutoff with every model, score
    what has matured and write the report.

    Args:
        run_date: The day the run is for (YYYY-MM-DD); the cutoff is the day before, or the last
            service date if the data lags. Default (empty): the time the schedule created the
            run for, in America/Chicago, so a late or replayed run forecasts the right day;
            today in Chicago for a run no schedule created.
    """
    logger = get_run_logger()
    settings = Settings.from_env()
    store = Store.open_writable(settings.storage, settings.lock_policy())
    day = logical_run_date(run_date, flow_run.scheduled_start_time, datetime.now(SERVICE_TIMEZONE))

    ingest_state = ingest(return_state=True)
    ingested = ingest_state.result(raise_on_failure=False)
    errors = [] if ingest_state.is_completed() else [str(ingested)]
    snapshot_notices: list[str] = []
    for extra in settings.extra_sources:  # route and station files, when configured
        extra_state = ingest(source=extra, return_state=True)
        extra_summary = extra_state.result(raise_on_failure=False)
        if not extra_state.is_completed():
            errors.append(str(extra_summary))
        elif extra_summary.notice:
            snapshot_notices.append(extra_summary.notice)
    ingest_error = "; ".join(errors) or None
    if ingest_error:
        logger.error("ingest failed, forecasting from the last good data: %s", ingest_error)
    weather_line = _weather_line(weather(run_date=day, return_state=True))

    available = store.ridership.series_ids()
    if not available:
        raise Unavailable(f"no clean data under {store.url} to forecast from: {ingest_error}")
    series = resolve_settings_series(None, available, settings)
    history = load_history(store, with_totals(series))
    cutoff, lag_days = nightly_cutoff(day, history.index.max())
    data_used = _data_used(ingested if not ingest_error else None, ingest_error, history.index.max(), snapshot_notices)
    notes = [data_used, weather_line]
    if lag_days:
        lag_note = f"Data lags: the last service date is {cutoff.date()}, {lag_days} day(s) before {day - pd.Timedelta(days=1)}."
        logger.warning(lag_note)
        notes.append(lag_note)

    alerts = detect_regimes(store, history, series, cutoff)
    notes.extend(f"Regime change: {line}." for line in alerts)

    models = default_models(settings)
    retrained: list[str] = []
    rnn_models = [m for m in models if is_rnn(m)]
    if rnn_models:
        from flows.rnn import retrain_when_due

        retrained = retrain_when_due(store, history, settings, rnn_models, model_series(rnn_models[0], series), cutoff)

    window = training_window(settings, None, None)
    progress = forecast_cutoffs(
        store, history, settings, models, series, pd.DatetimeIndex([cutoff]), window, overwrite=False,
        many_series_models=settings.many_series_models,
    )
    report = score_and_report(
        store, settings, run_date=pd.Timestamp(day), eval_date=cutoff, target_range=None,
        data_note=" ".join(n for n in (*notes, progress.note()) if n), latest_cutoff=cutoff,
    )
    summary = NightlySummary(
        run_date=str(day), cutoff=str(cutoff.date()), lag_days=lag_days, ingest_error=ingest_error,
        data_used=data_used, retrained=retrained, regime_alerts=alerts, progress=progress, report=report,
        forecasts_path=store.forecasts.path, weather=weather_line,
    )
    if ingest_error:
        raise DegradedRun(
            f"nightly {day}: forecasts and report written from the last good data "
            f"(through {history.index.max().date()}) because ingest failed: {ingest_error}",
            outcome=summary,
        )
    return summary


def _data_used(
    ingested: IngestSummary | None, ingest_error: str | None, last_date: pd.Timestamp, snapshot_notices: Sequence[str] = ()
) -> str:
    """One or more sentences for the summary and the report: which data this run forecast from,
    and every bundled snapshot that stood in for a source (``snapshot_notices``: the station file's)."""
    also = "".join(f" {notice[:1].upper()}{notice[1:]}." for notice in snapshot_notices)
    if ingest_error:
        return f"the last good data in the store (through {last_date.date()}); ingest failed: {ingest_error}.{also}"
    if ingested is not None and ingested.notice:
        return f"{ingested.notice}.{also}"
    source = ingested.source if ingested is not None else "the clean store"
    return f"{source} (through {last_date.date()}).{also}"


def _weather_line(state) -> str:
    """The weather flow's sentence; a weather step that broke is said, never raised: the
    forecasts need no weather."""
    outcome = state.result(raise_on_failure=False)
    if state.is_completed():
        return outcome.line
    get_run_logger().error("weather step failed, forecasting without it: %s", outcome)
    return f"Weather: the weather step failed ({outcome}); nothing of it was used."
