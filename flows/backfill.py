"""Backfill flow: the walk-forward over a range of run dates, as if the nightly job had run on
each one (cutoff = run date − 1). Resumable: stored cutoffs are skipped unless ``overwrite``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from prefect import flow

from flows.common import (
    ForecastProgress, check_backfill_parameters, default_models, forecast_cutoffs, score_and_report, training_window,
)  # fmt: skip
from flows.series import choose_series, load_required_history
from flows.settings import Settings
from storage import Store
from tasks.core.evaluation.scoring import TARGET_SCOPES, scored_targets
from tasks.core.models.forecaster import cutoffs_for_run_dates
from tasks.core.models.catalog import ModelName, SeriesName
from tasks.evaluate import ReportOutcome
from tasks.ingest import remove_interrupted_writes


@dataclass(frozen=True)
class BackfillSummary:
    start: str
    end: str
    models: list[str]
    series: list[str]
    progress: ForecastProgress
    report: ReportOutcome
    forecasts_path: str
    scored: str  # which targets the leaderboard scores, in words


# The Args section is what `prefect deploy` turns into the descriptions the UI shows beside each
# field (tests/test_flow_parameters.py); a field left empty in the UI is None, so each None
# default spells out what it falls back to.
@flow(name="backfill", log_prints=True)
def backfill(
    start: date,
    end: date,
    models: list[ModelName] | None = None,
    series: list[SeriesName] | None = None,
    overwrite: bool = False,
    train_start: date | None = None,
    train_days: int | None = None,
) -> BackfillSummary:
    """Forecast every run date from ``start`` to ``end`` (inclusive) as the nightly job would
    have, then score and report over that range: the leaderboard scores the targets on the run
    dates ``start`` .. ``end`` (up to the last actual), from every stored forecast of them; the
    forecasts the last cutoffs make of later days are stored, not scored
    (:func:`tasks.core.evaluation.scoring.scored_targets`, scope ``run_dates``).

    Args:
        start: First run date (YYYY-MM-DD). Its cutoff, the last day of data its forecasts use,
            is the day before.
        end: Last run date (YYYY-MM-DD), included. The report is written for this run date.
        models: Models to forecast with. Default (empty): naive, sarima, sarimax, sarimax_log, ridge, the production RNNs
            from RIDERSHIP_RNN_MODELS (multitask_rnn unless set; set empty: none) and the
            ensemble of RIDERSHIP_ENSEMBLE_MEMBERS (ridge, sarimax_log unless set;
            set empty: no ensemble) for bus and rail, RIDERSHIP_MANY_SERIES_MODELS (naive, ridge
            unless set) for every other series. RNNs are retrained every 7 days inside the range.
        series: Series to forecast: ids (bus, rail, route:9, station:40380) or shell patterns
            such as route:* (every route). Default (empty): RIDERSHIP_SERIES (unless set: bus, rail, rail_entries, station:*;
            a default pattern the store has nothing for is skipped).
        overwrite: Recompute cutoffs already stored and replace their files. Default false:
            skip them, so an interrupted backfill resumes where it stopped.
        train_start: Fit SARIMA on an expanding window from this date (give this or
            train_days, not both). Default (empty, and train_days empty):
            RIDERSHIP_SARIMA_TRAIN_DAYS, a rolling window of 182 days unless set; when that is
            0, expanding from RIDERSHIP_SARIMA_TRAIN_START (2018-01-01 unless set).
        train_days: Fit SARIMA on a rolling window of this many days before each cutoff (give
            this or train_start, not both). Default (empty, and train_start empty):
            RIDERSHIP_SARIMA_TRAIN_DAYS, 182 days unless set; when that is 0, expanding from
            RIDERSHIP_SARIMA_TRAIN_START (2018-01-01 unless set).
    """
    check_backfill_parameters(start, end, models, series, train_start, train_days)
    settings = Settings.from_env()
    store = Store.open_writable(settings.storage, settings.lock_policy())
    remove_interrupted_writes(store)
    chosen_models = list(models or default_models(settings))
    chosen_series = choose_series(store, series, settings)
    window = training_window(settings, train_start, train_days)
    history = load_required_history(store, chosen_series)
    cutoffs = cutoffs_for_run_dates(pd.Timestamp(start), pd.Timestamp(end))
    progress = forecast_cutoffs(
        store, history, settings, chosen_models, chosen_series, cutoffs, window, overwrite,
        many_series_models=None if models else settings.many_series_models,
    )
    targets = scored_targets(cutoffs[0], cutoffs[-1], settings.horizon, history.index.max(), "run_dates")
    report = score_and_report(
        store, settings, run_date=pd.Timestamp(end), eval_date=targets.end,
        target_range=(targets.start, targets.end), data_note=progress.note(),
    )
    return BackfillSummary(
        start=str(start), end=str(end), models=chosen_models, series=chosen_series,
        progress=progress, report=report, forecasts_path=store.forecasts.path,
        scored=f"targets {targets.start.date()}..{targets.end.date()}: {TARGET_SCOPES['run_dates']}",
    )
