"""Prefect task for model ``ensemble``: combine the members' stored forecasts per cutoff."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from storage import Store
from tasks.core.features.level_shifts import breaks_until
from tasks.core.calibration import bands_as_forecast, raw_name
from tasks.core.models.ensemble import EnsembleSpec, ensemble_forecasts, regime_members
from tasks.core.evaluation.scoring import history_actuals


@task(cache_policy=NO_CACHE)
def forecast_ensemble(
    store: Store, history: pd.DataFrame, spec: EnsembleSpec, series: Sequence[str],
    cutoffs: Sequence[pd.Timestamp], horizon: int, publication_lag: int = 0,
) -> pd.DataFrame:
    """Read the members' (and last-resort models') stored forecasts the cutoffs may use, with the
    bands they were forecast with (calibration comes after the combination), detect
    the series' level shifts in the data up to the last cutoff, combine (weights and breaks from
    the actuals published by each cutoff: up to ``publication_lag`` days before it)."""
    first = min(cutoffs) - pd.Timedelta(days=publication_lag + spec.lookback_days + horizon)
    models = list(regime_members(spec))
    stored = store.forecasts.read(start=first, end=max(cutoffs), models=[*models, *map(raw_name, models)], series=list(series))
    stored = bands_as_forecast(stored)
    breaks = breaks_until(history, series, max(cutoffs))
    return ensemble_forecasts(spec, stored, history_actuals(history, series), list(series), list(cutoffs), breaks, publication_lag)
