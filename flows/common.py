"""Steps the nightly and backfill flows share: forecasting a list of cutoffs for every model,
then scoring and reporting. A nightly run is a backfill of one day plus ingest."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Iterator, Sequence

import pandas as pd
from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run

from flows.calibrate import calibrate_cutoffs
from flows.reconcile import reconcile_cutoffs
from flows.rnn import forecast_rnn_chunk
from flows.scale_out import ClusterForecasts, cluster_runner
from flows.series import model_series
from flows.settings import Settings
from flows.weather import seed_from_snapshot
from storage import Store
from schemas.errors import InvalidInput
from tasks.core.models.ensemble import MODEL_NAME as ENSEMBLE
from tasks.core.models.ensemble import EnsembleSpec
from tasks.core.models.fallback import fallback_note, fallbacks
from tasks.core.models.catalog import (
    MODEL_TRAINING_DAYS, STATISTICAL_MODELS, WEATHER_MODELS, check_models, is_combination, is_rnn,
)  # fmt: skip
from tasks.core.data.activity import active_at, check_series_syntax, group_by_activity
from tasks.core.models.naive import MODEL_NAME as NAIVE
from tasks.core.walk_forward import TrainingWindow
from tasks.ensemble import forecast_ensemble
from tasks.evaluate import ReportOutcome, evaluate, leaderboard_window, load_actuals, publish_report
from tasks.forecast import cutoffs_to_run, event_history, store_forecasts, walk_forward, weather_history

CUTOFFS_PER_CHUNK = 91
"""Cutoffs fitted and stored together (a quarter): a killed backfill loses at most one chunk of
work (~10 s of SARIMA fits on 2 cores), and each chunk pays the task and pool hand-off once."""


@dataclass
class ForecastProgress:
    cutoffs_total: int
    stored: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    lagging: list[str] = field(default_factory=list)
    # forecasts a substitute stood in for (the seasonal naive; for an RNN, its previous champion)
    fallbacks: list[str] = field(default_factory=list)

    def note(self) -> str | None:
        """The fallbacks as sentences for the report (None when there were none)."""
        return fallback_note(self.fallbacks)

    def record_fallbacks(self, lines: list[str]) -> None:
        """Log and keep the fallback lines of forecasts just stored."""
        for line in lines:
            get_run_logger().warning("fallback: %s", line)
            self.fallbacks.append(line)


def current_run_id() -> str:
    return str(flow_run.get_id() or uuid.uuid4())


def check_backfill_parameters(
    start: date, end: date, models: Sequence[str] | None, series: Sequence[str] | None,
    train_start: date | None = None, train_days: int | None = None,
) -> None:
    """Raise ``InvalidInput`` (one line) for parameters no run could use, before any work."""
    if end < start:
        raise InvalidInput(f"end {end} is before start {start}")
    check_models(models or [])
    check_series_syntax(series or [])
    if train_start is not None and train_days is not None:
        raise InvalidInput("give train_start (expanding window) or train_days (rolling window), not both")
    if train_days is not None and train_days < 1:
        raise InvalidInput(f"train_days must be at least 1, got {train_days}")


def training_window(settings: Settings, train_start: date | None, train_days: int | None) -> TrainingWindow:
    if train_days is not None:
        return TrainingWindow.rolling(train_days)
    if train_start is not None:
        return TrainingWindow.expanding(pd.Timestamp(train_start))
    if settings.sarima_train_days is not None:
        return TrainingWindow.rolling(settings.sarima_train_days)
    return TrainingWindow.expanding(pd.Timestamp(settings.sarima_train_start))


def model_window(model: str, configured: TrainingWindow) -> TrainingWindow:
    """The training window of a statistical model: its own tuned one where it has one (sarimax,
    ridge), else the configured SARIMA window (settings, --train-start / --train-days)."""
    if model in MODEL_TRAINING_DAYS:
        return TrainingWindow.rolling(MODEL_TRAINING_DAYS[model])
    return configured


def default_models(settings: Settings) -> list[str]:
    """The production set: statistical models, the RNN production set, then the ensemble (last:
    it combines what the others stored for the same cutoff)."""
    combination = [ENSEMBLE] if settings.ensemble_members else []
    return [*settings.statistical_models, *settings.rnn_models, *combination]


def ensemble_spec(settings: Settings) -> EnsembleSpec:
    return EnsembleSpec(members=tuple(settings.ensemble_members), method=settings.ensemble_method)  # type: ignore[arg-type]


def forecast_cutoffs(
    store: Store,
    history: pd.DataFrame,
    settings: Settings,
    models: list[str],
    series: list[str],
    cutoffs: pd.DatetimeIndex,
    window: TrainingWindow,
    overwrite: bool,
    publication_lag: int = 0,
    many_series_models: Sequence[str] | None = None,
) -> ForecastProgress:
    """Forecast every model × series × cutoff not stored yet, chunk by chunk, with progress.

    ``publication_lag`` (a backtest's): each forecast labelled cutoff c is made from the data up
    to c - lag (:func:`tasks.core.walk_forward.historical_forecasts`); whether a series is active
    is judged there too. The statistical models and the ensemble support it; the RNNs do not.
    ``many_series_models``: a run on the production sets, where the series other than the totals
    get only these models (:func:`flows.series.model_series`)."""
    logger = get_run_logger()
    check_models(models)
    check_publication_lag(publication_lag, models)
    last_actual = history.index.max()
    progress = ForecastProgress(cutoffs_total=len(cutoffs))
    lagging = cutoffs[cutoffs > last_actual]
    if len(lagging):
        progress.lagging = [d.strftime("%Y-%m-%d") for d in lagging]
        logger.warning(
            "data lags: the clean series ends %s, so %d cutoff(s) up to %s cannot be forecast yet",
            last_actual.date(), len(lagging), lagging[-1].date(),
        )
    ready = cutoffs[cutoffs <= last_actual]
    run_id = current_run_id()
    units = len(models) * len(ready)
    done = 0.0
    artifact_id = create_progress_artifact(progress=0.0, description="cutoffs forecast, all models")

    def advance(cutoffs_done: float) -> None:
        nonlocal done
        done += cutoffs_done
        update_progress_artifact(artifact_id=artifact_id, progress=100.0 * done / max(units, 1))

    active = {s: _active_at(history, s, list(ready), publication_lag) for s in series}
    inactive = sum(len(ready) - len(days) for days in active.values())
    if inactive:
        logger.info("%d (series, cutoff) pair(s) without recent data (closed, suspended or new) are not forecast", inactive)
    runner = cluster_runner(settings)
    with runner or contextlib.nullcontext():
        cluster = ClusterForecasts(runner, store, history, settings, run_id, advance, publication_lag) if runner else None
        for model in models:
            forecast_series = model_series(model, series, many_series_models)
            if not forecast_series:  # a totals-only model on a run of stations
                logger.info("%s: not in the production set of %s", model, ", ".join(series[:3]) + (", ..." if len(series) > 3 else ""))
                continue
            todo = cutoffs_to_run(store, model, {s: active[s] for s in forecast_series}, list(ready), overwrite)
            progress.skipped[model] = len(ready) - len(todo)
            done += progress.skipped[model]
            progress.stored[model] = 0
            if cluster is not None and model in STATISTICAL_MODELS:
                # Collected before the next combination model, which reads what they stored.
                cluster.submit(model, forecast_series, todo, progress.skipped[model], model_window(model, window), active)
                continue
            if cluster is not None and is_combination(model):
                cluster.collect(progress)
            chunks = [todo[first : first + CUTOFFS_PER_CHUNK] for first in range(0, len(todo), CUTOFFS_PER_CHUNK)]
            for chunk, forecasts in _forecast_chunks(
                store, history, settings, model, forecast_series, chunks, window, active, publication_lag
            ):
                store_forecasts(store, forecasts, run_id)
                progress.record_fallbacks(fallbacks(forecasts))
                progress.stored[model] += len(chunk)
                advance(len(chunk))
            logger.info("%s: %d cutoff(s) forecast, %d already stored", model, progress.stored[model], progress.skipped[model])
        if cluster is not None:
            cluster.collect(progress)
    # After every model stored its forecasts (the ensemble combined them as forecast), before
    # reconciliation shifts the calibrated bands and scoring reads them.
    calibrate_cutoffs(store, history, settings, models, series, list(ready), active, run_id, publication_lag, many_series_models)
    reconciled = reconcile_cutoffs(
        store, history, settings, models, series, list(ready), active, overwrite, run_id, publication_lag, many_series_models
    )
    progress.stored.update(reconciled)
    update_progress_artifact(artifact_id=artifact_id, progress=100.0)
    return progress


def check_publication_lag(publication_lag: int, models: Sequence[str]) -> None:
    """Raise ``InvalidInput`` for a lag no run could use: negative, or asked of an RNN (trained
    and forecast from windows that end at the cutoff)."""
    if publication_lag < 0:
        raise InvalidInput(f"publication_lag must be 0 or more days, got {publication_lag}")
    rnns = [m for m in models if is_rnn(m)]
    if publication_lag and rnns:
        raise InvalidInput(
            f"a publication lag is supported for the statistical models and the ensemble, not the RNNs ({', '.join(rnns)})"
        )


def _active_at(history: pd.DataFrame, unique_id: str, cutoffs: list[pd.Timestamp], lag: int) -> list[pd.Timestamp]:
    """The cutoffs at which ``unique_id`` has data enough to forecast, judged at cutoff - lag."""
    shift = pd.Timedelta(days=lag)
    return [day + shift for day in active_at(history, unique_id, [c - shift for c in cutoffs])]


def _forecast_chunks(
    store: Store, history: pd.DataFrame, settings: Settings, model: str, series: list[str],
    chunks: list[list[pd.Timestamp]], window: TrainingWindow, active: dict[str, list[pd.Timestamp]],
    publication_lag: int = 0,
) -> Iterator[tuple[list[pd.Timestamp], pd.DataFrame]]:
    """Each chunk's forecasts, in order. Statistical fits of the next chunk are already running
    in the worker pool while the caller stores the previous one (measured: the pool otherwise
    idled ~1 s per chunk). RNN chunks run one after the other: a retrain must see the champion
    the previous chunk's retrain promoted."""
    if is_rnn(model):
        # Weekly retrains are due by calendar, whatever the stride between cutoffs (a backtest
        # forecasts every few days but retrains every week, as production does).
        span_start = chunks[0][0] if chunks else None
        naive_window = model_window(NAIVE, window)  # a naive fallback then equals the naive model's rows
        for chunk in chunks:
            yield chunk, forecast_rnn_chunk(store, history, settings, model, series, chunk, span_start, naive_window)
            span_start = chunk[-1] + pd.Timedelta(days=1)
        return
    if is_combination(model):
        for chunk in chunks:
            yield chunk, forecast_ensemble(store, history, ensemble_spec(settings), series, chunk, settings.horizon, publication_lag)
        return
    window = model_window(model, window)
    history = event_history(history, model, series, settings.event_schedule)
    if model in WEATHER_MODELS:
        seed_from_snapshot(store, settings)  # a backtest's store may never have run the nightly
        history = weather_history(store, history, model)

    def submit(chunk: list[pd.Timestamp]) -> list:
        # One work unit per group of series active at the same cutoffs (normally one group).
        return [
            walk_forward.submit(
                history, model, members, days, settings.horizon, window, settings.workers, publication_lag=publication_lag
            )
            for members, days in group_by_activity(series, chunk, active)
        ]

    submitted = [(chunk, submit(chunk)) for chunk in chunks[:1]]
    for position in range(len(chunks)):
        if position + 1 < len(chunks):
            following = chunks[position + 1]
            submitted.append((following, submit(following)))
        chunk, futures = submitted[position]
        parts = [future.result() for future in futures]
        yield chunk, pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def score_and_report(
    store: Store,
    settings: Settings,
    run_date: pd.Timestamp,
    eval_date: pd.Timestamp,
    target_range: tuple[pd.Timestamp, pd.Timestamp] | None,
    data_note: str | None,
    latest_cutoff: pd.Timestamp | None = None,
    artifact_prefix: str = "ridership",
) -> ReportOutcome:
    # One scoring at a time per root: the last to score reads every forecast stored by the runs
    # that finished forecasting before it, so the metrics and report left behind are complete.
    with store.lock("scores", f"scoring at {eval_date.date()} for run date {run_date.date()}"):
        actuals = load_actuals(store)
        metrics = evaluate(store, actuals, eval_date, settings.horizon, target_range)
        return publish_report(
            store, metrics, actuals, run_date, eval_date, settings.horizon, settings.coverage_alert_threshold, data_note,
            window=leaderboard_window(target_range), latest_cutoff=latest_cutoff, artifact_prefix=artifact_prefix,
            station_locations=settings.station_locations,
            hierarchies=settings.hierarchies, coverage_days=settings.coverage_alert_days,
        )
