"""Which series a run forecasts and the history it loads for them: shared by every flow (the
nightly, backfill, backtest and report flows and the RNN steps), below all of them."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from flows.settings import Settings
from schemas.errors import Unavailable
from schemas.series import TOTAL_SERIES
from storage import Store
from tasks.core.data.activity import resolve_series
from tasks.core.models.catalog import is_rnn
from tasks.forecast import load_history


def choose_series(store: Store, requested: Sequence[str] | None, settings: Settings) -> list[str]:
    """The store's series that ``requested`` (default: RIDERSHIP_SERIES) names, ids or patterns."""
    available = store.ridership.series_ids()
    if not available:
        raise Unavailable(f"no clean data under {store.url}: run `ridership ingest` first")
    return resolve_settings_series(requested, available, settings)


def resolve_settings_series(requested: Sequence[str] | None, available: Sequence[str], settings: Settings) -> list[str]:
    """``requested``, else the configured series; the built-in default skips what the store lacks."""
    if requested:
        return resolve_series(list(requested), available)
    return resolve_series(list(settings.series), available, skip_unmatched=not settings.series_from_env)


def with_totals(series: Sequence[str]) -> list[str]:
    """``series`` plus the system totals, which the multitask RNNs read whatever they forecast."""
    return [*series, *(t for t in TOTAL_SERIES if t not in series)]


def load_required_history(store: Store, series: Sequence[str] | None = None) -> pd.DataFrame:
    """The model history of ``series`` and the totals (default: every series)."""
    history = load_history(store, None if series is None else with_totals(series))
    if history.empty:
        raise Unavailable(f"no clean data under {store.url}: run `ridership ingest` first")
    return history


def model_series(model: str, series: Sequence[str], many_series_models: Sequence[str] | None = None) -> list[str]:
    """The series a model forecasts: the RNNs are built on the two system totals only; with
    ``many_series_models`` (a run on the production sets), a model outside that set forecasts the
    totals only."""
    totals_only = is_rnn(model) or (many_series_models is not None and model not in many_series_models)
    return [s for s in series if s in TOTAL_SERIES] if totals_only else list(series)
