"""Prefect task for calibrated bands: a model's stored forecasts of some cutoffs, calibrated from
its earlier ones (``tasks/core/calibration.py``), with the bands as forecast kept as ``<model>@raw``."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from storage import Store
from tasks.core.calibration import CalibrationSpec, calibrate_pending, raw_name
from tasks.core.features.level_shifts import breaks_until
from tasks.core.evaluation.scoring import history_actuals


@task(cache_policy=NO_CACHE, task_run_name="calibrate-{model}")
def calibrate_model(
    store: Store, history: pd.DataFrame, spec: CalibrationSpec, model: str, series: Sequence[str],
    cutoffs: Sequence[pd.Timestamp], horizon: int, publication_lag: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows to store: ``model``'s forecasts at ``cutoffs`` not calibrated yet, calibrated
    (read with the forecasts issued in the lookback before them, leaving out the transition
    misses of the level shifts detected in ``history``), and the same rows as they were, renamed
    ``<model>@raw``; both empty when there is nothing to calibrate."""
    if not cutoffs or not series:
        return pd.DataFrame(), pd.DataFrame()
    first = min(cutoffs) - pd.Timedelta(days=spec.lookback_days + horizon + publication_lag)
    stored = store.forecasts.read(start=first, end=max(cutoffs), models=[model, raw_name(model)], series=list(series))
    # The scan only looks back and each cutoff uses the breaks detected by its own data end.
    breaks = breaks_until(history, series, max(cutoffs))
    return calibrate_pending(stored, history_actuals(history, series), cutoffs, spec, publication_lag, breaks)
