"""RNN steps of the flows: weekly retraining in walk-forward order, then daily forecasts from the
champion of each cutoff's week; and the `retrain` flow."""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import flow

from flows.series import choose_series, load_required_history, model_series
from flows.settings import Settings
from storage import Store
from tasks.core.models.catalog import check_models
from tasks.core.walk_forward import DEFAULT_WINDOW, TrainingWindow
from tasks.core.models.rnn.challengers import Challenger
from tasks.train import RetrainOutcome, due_retrains, forecast_with_champions, pretrain_challengers, retrain


def training_config(settings: Settings):
    from tasks.core.models.rnn import TrainingConfig

    return TrainingConfig(
        max_epochs=settings.rnn_max_epochs, train_days=settings.rnn_train_days,
        validation_days=settings.rnn_validation_days,
    )


def _retrain(
    store: Store, history: pd.DataFrame, settings: Settings, model: str, unique_id: str, cutoff: pd.Timestamp,
    pretrained: Challenger | None = None,
) -> RetrainOutcome:
    return retrain(
        store, history, model, unique_id, cutoff, training_config(settings), model in settings.rnn_improved_recipe,
        pretrained, settings.rnn_warm_start,
    )


def retrain_all(
    store: Store, history: pd.DataFrame, settings: Settings, model: str, planned: list[tuple[str, pd.Timestamp]]
) -> list[RetrainOutcome]:
    """The retrains ``planned`` ((series, cutoff), walk-forward order within each series). With
    ``RIDERSHIP_RNN_PARALLEL`` > 1 their challengers are trained first, side by side in worker
    processes (each needs only the data up to its cutoff), then replayed here in the same order
    through the promotion vote, the save and the pointer: the registry and the forecasts of the
    serial run (``tests/test_rnn_parallel.py``). So are more than
    ``RIDERSHIP_RNN_TRAININGS_PER_PROCESS`` of them (a long backfill), on at least one worker,
    each worker a fresh process for at most that many: the flow's process would otherwise keep
    every network it trained."""
    pretrained = {}
    per_process = settings.rnn_trainings_per_process
    long_run = len(planned) > per_process and not settings.rnn_warm_start
    if (settings.rnn_parallel > 1 or long_run) and len(planned) > 1:
        pretrained = pretrain_challengers(
            history, model, planned, training_config(settings), model in settings.rnn_improved_recipe,
            max(1, settings.rnn_parallel), per_process if long_run else None,
        )
    return [
        _retrain(store, history, settings, model, unique_id, cutoff, pretrained.get((unique_id, cutoff)))
        for unique_id, cutoff in planned
    ]


def retrain_due(
    store: Store, history: pd.DataFrame, settings: Settings, model: str, series: list[str], cutoffs: list[pd.Timestamp]
) -> list[RetrainOutcome]:
    """Train every retrain that ``cutoffs`` make due (weekly, or when no champion exists)."""
    planned = [
        (unique_id, cutoff)
        for unique_id in series
        for cutoff in due_retrains(store, model, unique_id, cutoffs, settings.retrain_weekday)
    ]
    return retrain_all(store, history, settings, model, planned)


def forecast_rnn_chunk(
    store: Store, history: pd.DataFrame, settings: Settings, model: str, series: list[str],
    cutoffs: list[pd.Timestamp], retrain_from: pd.Timestamp | None = None,
    naive_window: TrainingWindow = DEFAULT_WINDOW,
) -> pd.DataFrame:
    """Walk-forward for one RNN over a chunk of cutoffs: every retrain due on the days from
    ``retrain_from`` (default: the first cutoff) to the last cutoff, in order, then forecast
    each cutoff with the champion as of it (``naive_window``: the seasonal naive's window, for
    the cutoffs it stands in at)."""
    days = pd.date_range(retrain_from if retrain_from is not None else min(cutoffs), max(cutoffs), freq="D")
    retrain_due(store, history, settings, model, series, list(days))
    return forecast_with_champions(store, history, model, series, cutoffs, settings.horizon, naive_window)


def retrain_when_due(
    store: Store, history: pd.DataFrame, settings: Settings, models: list[str], series: list[str],
    cutoff: pd.Timestamp,
) -> list[str]:
    """The nightly run's retrain: on the retrain weekday, or when a model has no champion."""
    trained = []
    for model in models:
        for outcome in retrain_due(store, history, settings, model, series, [cutoff]):
            trained.append(f"{outcome.model}/{outcome.unique_id} {outcome.version or 'nothing saved'} ({outcome.reason})")
    return trained


@flow(name="retrain", log_prints=True)
def retrain_models(models: list[str] | None = None, cutoff: date | None = None) -> list[RetrainOutcome]:
    """Train challengers of ``models`` (default: the production set) for every series at
    ``cutoff`` (default: the last service date) and promote those that beat their champion."""
    check_models(models or [])
    settings = Settings.from_env()
    store = Store.open_writable(settings.storage, settings.lock_policy())
    series = choose_series(store, None, settings)
    history = load_required_history(store, series)
    at = pd.Timestamp(cutoff) if cutoff is not None else history.index.max()
    return [
        outcome
        for model in (models or list(settings.rnn_models))
        for outcome in retrain_all(store, history, settings, model, [(u, at) for u in model_series(model, series)])
    ]
