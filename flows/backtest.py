"""Backtest flow: rolling-origin evaluation of any models over a range of cutoffs with a stride,
written under ``<root>/backtests/<name>/`` (forecasts, metrics, report, and the RNNs' own
registry) so production forecasts and champions are never touched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from prefect import flow

from flows.common import (
    ForecastProgress, check_backfill_parameters, check_publication_lag, default_models, forecast_cutoffs,
    score_and_report, training_window,
)  # fmt: skip
from flows.series import choose_series, load_required_history
from flows.settings import Settings
from schemas.errors import InvalidInput
from storage import Store
from tasks.core.evaluation.scoring import TARGET_SCOPES, scored_targets
from tasks.core.models.catalog import ModelName, SeriesName, is_rnn
from tasks.evaluate import ReportOutcome
from tasks.ingest import remove_interrupted_writes

STANDARD_PERIODS = {
    "2018": (date(2018, 3, 1), date(2018, 6, 30)),
    "2019": (date(2019, 3, 1), date(2019, 12, 31)),
    "2020": (date(2020, 2, 1), date(2020, 7, 31)),
    "2021": (date(2021, 3, 1), date(2021, 11, 30)),
}
"""The documented periods: a normal year, the March 2020 shock, the recovery, and the sealed
confirmation period (2018), on which no default is ever chosen (docs/models-and-accuracy.md)."""


@dataclass(frozen=True)
class BacktestSummary:
    name: str
    cutoffs: list[str]
    models: list[str]
    series: list[str]
    progress: ForecastProgress
    report: ReportOutcome
    forecasts_path: str
    scored: str  # which targets the leaderboard scores, in words


def backtest_cutoffs(start: date, end: date, every: int) -> pd.DatetimeIndex:
    """Cutoffs ``start``, ``start + every`` days, … up to ``end``."""
    if every < 1:
        raise InvalidInput(f"every must be at least 1 day, got {every}")
    return pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=f"{every}D")


@flow(name="backtest", log_prints=True)
def backtest(
    name: str,
    start: date,
    end: date,
    every: int = 3,
    models: list[ModelName] | None = None,
    series: list[SeriesName] | None = None,
    overwrite: bool = False,
    publication_lag: int = 0,
) -> BacktestSummary:
    """Rolling-origin evaluation: forecast from every ``every``-th cutoff of ``start``..``end``
    with each model at its production cadence (statistical models refitted at every cutoff, RNNs
    retrained weekly with the champion as of each cutoff, the ensemble from its members), then
    score against the actuals and rank the models on every target of every cutoff (``start + 1``
    .. ``end + horizon``, up to the last actual: :func:`tasks.core.evaluation.scoring.scored_targets`,
    scope ``all``). Resumable: stored cutoffs are skipped.

    The file is the final, revised one, and by default day c's value counts as known on day
    c + 1. ``publication_lag`` = N holds back the N days before each cutoff: the forecast
    labelled cutoff c is fitted and forecast from the data up to c - N only (the model forecasts
    N + horizon days and the first N are dropped), and is still scored on c + 1 .. c + horizon
    with h counted from c: what a nightly run on day c + 1 could have forecast if the portal
    published each day N days late (that run labels the forecast with its data's last day,
    c - N, so its h = N + k is this backtest's h = k). The ensemble weighs its members on the
    actuals up to c - N. RNNs (trained and forecast from windows ending at the cutoff) are
    refused with a lag.

    Args:
        name: the backtest's folder under <storage>/backtests/ (letters, digits, '.', '_', '-');
            running the same name again resumes it.
        start: first cutoff (last day of data of the first forecast), YYYY-MM-DD. Documented
            periods: 2019-03-01..2019-12-31 (a normal year), 2020-02-01..2020-07-31 (the shock),
            2021-03-01..2021-11-30 (the recovery).
        end: last cutoff, YYYY-MM-DD (inclusive).
        every: days between cutoffs (default 3).
        models: models to compare. Default (empty): the production set, as a backfill's: naive,
            sarima, sarimax, sarimax_log, ridge, the RNNs from RIDERSHIP_RNN_MODELS (multitask_rnn unless set)
            and the ensemble of RIDERSHIP_ENSEMBLE_MEMBERS (ridge, sarimax_log unless set); with a
            publication_lag, the same without the RNNs (which do not support one); every series but
            bus and rail gets RIDERSHIP_MANY_SERIES_MODELS (naive, ridge unless set).
        series: series to forecast: ids (bus, rail, route:9, station:40380) or shell patterns
            such as route:* (every route). Default (empty): RIDERSHIP_SERIES (unless set: bus, rail, rail_entries, station:*;
            a default pattern the store has nothing for is skipped).
        overwrite: recompute cutoffs already stored in this backtest (default: skip them).
        publication_lag: days of data held back before each cutoff (default 0): the forecast
            labelled cutoff c uses the data up to c - publication_lag only, and still forecasts
            c + 1 .. c + horizon. Give a lagged backtest its own name: stored cutoffs are
            skipped whatever lag they were made with.
    """
    check_backfill_parameters(start, end, models, series)
    check_publication_lag(publication_lag, models or [])
    cutoffs = backtest_cutoffs(start, end, every)
    settings = Settings.from_env()
    main = Store.open_writable(settings.storage, settings.lock_policy())
    store = main.backtest(name)
    remove_interrupted_writes(main)
    chosen_models = list(models or [m for m in default_models(settings) if not (publication_lag and is_rnn(m))])
    chosen_series = choose_series(main, series, settings)
    history = load_required_history(main, chosen_series)
    if cutoffs[0] >= history.index.max():
        raise InvalidInput(f"the first cutoff {start} leaves nothing to score: the data ends {history.index.max().date()}")
    window = training_window(settings, None, None)
    progress = forecast_cutoffs(
        store, history, settings, chosen_models, chosen_series, cutoffs, window, overwrite, publication_lag,
        many_series_models=None if models else settings.many_series_models,
    )
    targets = scored_targets(cutoffs[0], cutoffs[-1], settings.horizon, history.index.max(), "all")
    described = f"backtest {name}: {len(cutoffs)} cutoffs {start}..{end} every {every} day(s)"
    if publication_lag:
        described += f", each forecast from the data up to {publication_lag} day(s) before its cutoff (publication lag)"
    report = score_and_report(
        store, settings, run_date=pd.Timestamp(end), eval_date=targets.end, target_range=(targets.start, targets.end),
        data_note=" ".join(n for n in (f"{described}.", progress.note()) if n),
        artifact_prefix="ridership-backtest",
    )
    return BacktestSummary(
        name=name, cutoffs=[str(c.date()) for c in cutoffs], models=chosen_models, series=chosen_series,
        progress=progress, report=report, forecasts_path=store.forecasts.path,
        scored=f"targets {targets.start.date()}..{targets.end.date()}: {TARGET_SCOPES['all']}",
    )
